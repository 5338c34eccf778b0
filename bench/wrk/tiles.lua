-- tiles.lua: walk DISTINCT IIIF tile URLs so that no cache (server tile/
-- response cache, CDN-style cache) can help.
--
--   BASE=/iiif/big.tif WIDTH=20480 HEIGHT=11520 SCALES=1 THREADS=2 \
--     wrk -t2 -c8 -d20s --latency -s bench/wrk/tiles.lua http://127.0.0.1:18080
--
-- Environment:
--   BASE     URL path prefix up to and including the identifier, e.g.
--            /iiif/3/big.tif or /iiif/big.tif. A comma list multiplies the URL
--            space (the same file under several identifiers). A printf
--            pattern with COPIES=N expands to N identifiers, e.g.
--            BASE=/iiif/big-%04d.tif COPIES=300 -> big-0001.tif..big-0300.tif
--            (iipimage.sh links N makes such symlinks).             (required)
--   COPIES   see BASE                                                  [1]
--   COPIES_FROM  first number for the BASE pattern; give each run its own
--            range (e.g. 1, 21, 41 ...) when the server under test keeps a
--            cache between runs                                        [1]
--   WIDTH, HEIGHT  full-resolution image size in pixels               (required)
--   TILE     tile edge in full-resolution pixels at scale 1           [256]
--   SCALES   comma list of scale factors, e.g. 1 or 8 or 1,2,4,8       [1]
--   STYLE    3 = IIIF 3.0 canonical size "w,h"; 2 = IIIF 2 canonical "w," [3]
--   ROTATION rotation segment                                          [0]
--   FORMAT   quality.format segment                                    [default.jpg]
--   SEED     shuffle seed (deterministic permutation)                  [42]
--   THREADS  must equal wrk -t: each thread starts at i*N/THREADS of the
--            shuffled list and walks forward, so threads never overlap
--            until one has used up its 1/THREADS share                 [2]
--   VERBOSE  1 = print the first URL of each thread                    [0]
--   DUMP     file to write the whole shuffled URL list to (thread 0)   [unset]
--
-- URL shape, region x,y,w,h in full-resolution pixels (edge tiles clipped):
--   STYLE=3  {BASE}/x,y,w,h/ceil(w/s),ceil(h/s)/{ROTATION}/{FORMAT}
--   STYLE=2  {BASE}/x,y,w,h/ceil(w/s),/{ROTATION}/{FORMAT}
-- done() prints distinct-URL count, requests per thread, whether any URL was
-- requested twice, and the number of non-2xx responses.

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local function env_num(name, default)
  local v = env(name, nil)
  if v == nil then return default end
  local n = tonumber(v)
  if n == nil then error(name .. "=" .. v .. " is not a number") end
  return n
end

local function split(s)
  local out = {}
  for item in string.gmatch(s, "[^,]+") do
    item = item:gsub("^%s+", ""):gsub("%s+$", "")
    if item ~= "" then out[#out + 1] = item end
  end
  return out
end

local function build_urls()
  local bases = split(env("BASE", ""))
  local W, H = env_num("WIDTH", nil), env_num("HEIGHT", nil)
  if #bases == 0 or not W or not H then
    error("tiles.lua needs BASE, WIDTH and HEIGHT in the environment")
  end
  -- BASE=/iiif/big-%04d.tif COPIES=N expands to N identifiers
  -- COPIES_FROM .. COPIES_FROM+N-1
  local copies = env_num("COPIES", 1)
  local from = env_num("COPIES_FROM", 1)
  local expanded = {}
  for _, base in ipairs(bases) do
    base = base:gsub("/+$", "")
    if base:find("%%") then
      for i = from, from + copies - 1 do expanded[#expanded + 1] = string.format(base, i) end
    else
      expanded[#expanded + 1] = base
    end
  end
  bases = expanded
  local tile = env_num("TILE", 256)
  local style = env("STYLE", "3")
  local rot = env("ROTATION", "0")
  local fmt = env("FORMAT", "default.jpg")
  local scales = split(env("SCALES", "1"))
  -- tile suffixes "x,y,w,h/size/rot/fmt", shared by every base
  local tiles = {}
  for _, sv in ipairs(scales) do
    local s = tonumber(sv)
    if not s or s < 1 then error("bad scale " .. sv) end
    local step = tile * s
    for y = 0, H - 1, step do
      local h = math.min(step, H - y)
      local sh = math.ceil(h / s)
      for x = 0, W - 1, step do
        local w = math.min(step, W - x)
        local sw = math.ceil(w / s)
        local size
        if style == "2" then size = sw .. "," else size = sw .. "," .. sh end
        tiles[#tiles + 1] = string.format("%d,%d,%d,%d/%s/%s/%s", x, y, w, h, size, rot, fmt)
      end
    end
  end
  -- URL k (0-based) = bases[k / #tiles] .. "/" .. tiles[k % #tiles]; shuffle
  -- the indices with a deterministic Fisher-Yates driven by Park-Miller
  -- (exact in doubles, same on every Lua/LuaJIT build, unlike math.random).
  local nt = #tiles
  local total = #bases * nt
  local perm = {}
  for i = 1, total do perm[i] = i - 1 end
  local state = env_num("SEED", 42) % 2147483647
  if state <= 0 then state = state + 2147483646 end
  for i = total, 2, -1 do
    state = (state * 16807) % 2147483647
    local j = (state % i) + 1
    perm[i], perm[j] = perm[j], perm[i]
  end
  local function url(k) -- k: 0-based position in the shuffled walk
    local v = perm[k + 1]
    local b = math.floor(v / nt)
    return bases[b + 1] .. "/" .. tiles[v - b * nt + 1]
  end
  return url, total
end

-- ---------------------------------------------------------------- main state
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

-- ---------------------------------------------------------------- thread state
-- count, non2xx, share, n, status_hist are globals so done() can read them
-- with thread:get().
local url_at, pos, first_pos

function init(args)
  url_at, n = build_urls()
  local nthreads = env_num("THREADS", 2)
  local tid = id or 0
  -- start of this thread's share of the shuffled list
  first_pos = math.floor(tid * n / nthreads) % n
  share = math.floor((tid + 1) * n / nthreads) - math.floor(tid * n / nthreads)
  if tid >= nthreads then share = 0 end -- THREADS < -t: overlap likely
  pos = first_pos
  count, non2xx = 0, 0
  status_hist = {}
  local dump = env("DUMP", nil)
  if dump and tid == 0 then -- every URL in walk order, for checking
    local f = assert(io.open(dump, "w"))
    for k = 0, n - 1 do f:write(url_at(k), "\n") end
    f:close()
  end
  if env("VERBOSE", "0") == "1" then
    io.write(string.format("thread %d: %d distinct URLs, start %d, e.g. %s\n",
                           tid, n, first_pos, url_at(pos)))
  end
end

function request()
  local path = url_at(pos)
  pos = (pos + 1) % n
  count = count + 1
  return wrk.format(nil, path)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local k = tostring(status)
    status_hist[k] = (status_hist[k] or 0) + 1
  end
end

-- ---------------------------------------------------------------- report
function done(summary, latency, requests)
  local total_req, total_bad, distinct = 0, 0, 0
  local repeats = false
  local per = {}
  local hist = {}
  for _, t in ipairs(threads) do
    local c = t:get("count") or 0
    local bad = t:get("non2xx") or 0
    local sh = t:get("share") or 0
    distinct = t:get("n") or distinct
    total_req = total_req + c
    total_bad = total_bad + bad
    if c > sh then repeats = true end
    per[#per + 1] = string.format("%d/%d", c, sh)
    local h = t:get("status_hist")
    if type(h) == "table" then
      for k, v in pairs(h) do hist[k] = (hist[k] or 0) + v end
    end
  end
  local threads_env = env_num("THREADS", 2)
  io.write("------------------------------------------------------------\n")
  io.write(string.format("tiles.lua: distinct URLs %d (SCALES=%s STYLE=%s)\n",
                         distinct, env("SCALES", "1"), env("STYLE", "3")))
  io.write(string.format("tiles.lua: requests issued %d; per thread used/share: %s\n",
                         total_req, table.concat(per, " ")))
  if #threads ~= threads_env then
    io.write(string.format("tiles.lua: WARNING THREADS=%d but wrk ran %d threads; set THREADS to -t\n",
                           threads_env, #threads))
  end
  io.write(string.format("tiles.lua: URL repeats: %s\n",
                         repeats and "YES (run shorter or add identifiers to BASE)" or "none"))
  local parts = {}
  for k, v in pairs(hist) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  io.write(string.format("tiles.lua: non-2xx responses: %d%s\n", total_bad,
                         #parts > 0 and (" (" .. table.concat(parts, " ") .. ")") or ""))
  io.write(string.format("tiles.lua: socket errors: connect %d read %d write %d timeout %d; status errors %d\n",
                         summary.errors.connect, summary.errors.read, summary.errors.write,
                         summary.errors.timeout, summary.errors.status))
  io.write(string.format("tiles.lua: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  req/s %.1f\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000,
                         summary.requests / (summary.duration / 1e6)))
end
