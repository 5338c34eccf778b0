-- thumbs.lua: whole-image thumbnails of 150-700 px, the sizes catalogue
-- pages, search results and viewers' navigators ask for, cycling through
-- sizes and identifiers so consecutive requests differ.
--
--   BASE=/iiif/2/big-%04d.tif COPIES=20 wrk -t1 -c1 -d8s --latency \
--     -s bench/wrk/thumbs.lua http://127.0.0.1:18080
--
-- Environment:
--   BASE    URL path prefix up to and including the identifier; a printf
--           pattern expands to COPIES identifiers                (required)
--   COPIES  see BASE                                                  [1]
--   SIZES   comma list of widths                    [150,200,300,400,500,700]
--   FORMAT  quality.format segment                          [default.jpg]
-- done() prints the number of non-2xx responses.

local base = os.getenv("BASE") or error("BASE is required")
local copies = tonumber(os.getenv("COPIES") or "1")
local format = os.getenv("FORMAT") or "default.jpg"
local sizes = {}
for s in string.gmatch(os.getenv("SIZES") or "150,200,300,400,500,700", "[^,]+") do
  sizes[#sizes + 1] = tonumber(s)
end

local urls = {}
for c = 1, copies do
  local id = base
  if string.find(base, "%%") then id = string.format(base, c) end
  for _, w in ipairs(sizes) do
    urls[#urls + 1] = id .. "/full/" .. w .. ",/0/" .. format
  end
end

local i = 0
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end

local bad = 0
response = function(status)
  if status < 200 or status > 299 then bad = bad + 1 end
end

done = function()
  io.write(string.format("thumbs: %d distinct URLs\nnon-2xx: %d\n", #urls, bad))
end
