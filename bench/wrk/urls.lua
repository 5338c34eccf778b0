-- urls.lua: replay a file of URL paths, e.g. to measure a cache on a known
-- set of IIIF requests (warm it first, then replay).
--
--   URLS=/tmp/peers/tiles.txt THREADS=2 XCACHE=1 \
--     wrk -t2 -c16 -d20s --latency -s bench/wrk/urls.lua http://127.0.0.1:18081
--
-- Environment:
--   URLS     file with one URL path per line, e.g.
--            /iiif/3/page.tif/0,0,256,256/256,/0/default.jpg
--            (blank lines and lines starting with # are skipped; a full
--            http://host:port/path is cut down to its path)        (required)
--   ORDER    rr     = round robin: every request takes the next path; thread
--                     i starts at i*N/THREADS so threads do not move in step
--            random = every request takes a random path (per-thread
--                     Park-Miller generator seeded with SEED+id, so a run is
--                     repeatable)                                     [rr]
--   SEED     seed for ORDER=random                                   [42]
--   THREADS  must equal wrk -t (used for the round-robin offsets)    [1]
--   XCACHE   1 = look at every response (wrk's response() callback): count
--            non-2xx responses exactly, by status, and the share of
--            responses whose X-Cache header contains HIT. The callback
--            makes wrk keep headers and body of every response and call
--            Lua for each, which costs throughput, so it is off by default;
--            then only wrk's own count of status >= 400 is available.  [0]
--   VERBOSE  1 = print each thread's first path                       [0]
--
-- done() prints the path count, requests issued, how many times the list
-- was gone through, non-2xx (or >= 400) responses, the X-Cache shares with
-- XCACHE=1, socket errors and p50/p90/p99.

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

local function read_paths(file)
  local f, err = io.open(file, "r")
  if not f then error("urls.lua: cannot open URLS=" .. file .. ": " .. tostring(err)) end
  local paths = {}
  for line in f:lines() do
    line = line:gsub("\r$", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" and line:sub(1, 1) ~= "#" then
      line = line:gsub("^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "") -- scheme://host
      if line == "" then line = "/" end
      if line:sub(1, 1) ~= "/" then
        error("urls.lua: not a path: " .. line)
      end
      paths[#paths + 1] = line
    end
  end
  f:close()
  if #paths == 0 then error("urls.lua: no paths in " .. file) end
  return paths
end

local URLS = env("URLS", nil)
local ORDER = env("ORDER", "rr")
local XCACHE = env("XCACHE", "0") == "1"
if ORDER ~= "rr" and ORDER ~= "random" then
  error("urls.lua: ORDER=" .. ORDER .. ": rr or random")
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
-- count, n, non2xx, status_hist, xhit, xseen, xvals are globals so that
-- done() can read them with thread:get().
local reqs, pos, rng

function init(args)
  if not URLS then error("urls.lua needs URLS=file (one URL path per line)") end
  local paths = read_paths(URLS)
  n = #paths
  -- Pre-format the requests when the list is not huge, else format each time.
  if n <= 200000 then
    reqs = {}
    for i = 1, n do reqs[i] = wrk.format(nil, paths[i]) end
  else
    reqs = setmetatable({}, { __index = function(_, i) return wrk.format(nil, paths[i]) end })
  end
  local tid = id or 0
  local nthreads = env_num("THREADS", 1)
  pos = math.floor((tid % nthreads) * n / nthreads) -- 0-based
  -- Park-Miller minimal standard generator: exact in doubles, the same on
  -- every Lua/LuaJIT build (unlike math.random).
  rng = (env_num("SEED", 42) + 7919 * tid) % 2147483647
  if rng <= 0 then rng = rng + 2147483646 end
  count, non2xx, xhit, xseen = 0, 0, 0, 0
  status_hist, xvals = {}, {}
  if env("VERBOSE", "0") == "1" then
    io.write(string.format("urls.lua: thread %d: %d paths, ORDER=%s, first %s\n", tid, n,
                           ORDER, ORDER == "rr" and paths[pos + 1] or "(random)"))
  end
end

if ORDER == "random" then
  function request()
    rng = (rng * 16807) % 2147483647
    count = count + 1
    return reqs[(rng % n) + 1]
  end
else
  function request()
    local r = reqs[pos + 1]
    pos = pos + 1
    if pos == n then pos = 0 end
    count = count + 1
    return r
  end
end

-- Only defined with XCACHE=1: wrk asks for headers and body only when the
-- script has a response() function.
if XCACHE then
  local function xcache(headers)
    local v = headers["X-Cache"] or headers["x-cache"]
    if v then return v end
    for k, val in pairs(headers) do
      if k:lower() == "x-cache" then return val end
    end
    return nil
  end

  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      local k = tostring(status)
      status_hist[k] = (status_hist[k] or 0) + 1
    end
    local v = xcache(headers)
    xseen = xseen + 1
    if v then
      if v:find("HIT", 1, true) then xhit = xhit + 1 end
      local word = v:match("^(%S+)") or v -- "HIT from host:port" -> HIT
      xvals[word] = (xvals[word] or 0) + 1
    else
      xvals["(none)"] = (xvals["(none)"] or 0) + 1
    end
  end
end

-- ---------------------------------------------------------------- report
local function hist_string(h)
  local parts = {}
  for k, v in pairs(h) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  return table.concat(parts, " ")
end

function done(summary, latency, requests)
  local total_req, total_bad, paths = 0, 0, 0
  local hits, seen = 0, 0
  local hist, vals = {}, {}
  for _, t in ipairs(threads) do
    total_req = total_req + (t:get("count") or 0)
    total_bad = total_bad + (t:get("non2xx") or 0)
    hits = hits + (t:get("xhit") or 0)
    seen = seen + (t:get("xseen") or 0)
    paths = t:get("n") or paths
    for _, pair in ipairs({ { "status_hist", hist }, { "xvals", vals } }) do
      local h = t:get(pair[1])
      if type(h) == "table" then
        for k, v in pairs(h) do pair[2][k] = (pair[2][k] or 0) + v end
      end
    end
  end
  local nthreads = env_num("THREADS", 1)
  io.write("------------------------------------------------------------\n")
  io.write(string.format("urls.lua: %d paths from %s, ORDER=%s%s\n", paths, URLS or "?", ORDER,
                         ORDER == "random" and (" SEED=" .. env("SEED", "42")) or ""))
  io.write(string.format("urls.lua: requests issued %d (%.2f passes over the list)\n",
                         total_req, paths > 0 and total_req / paths or 0))
  if ORDER == "rr" and #threads ~= nthreads then
    io.write(string.format("urls.lua: WARNING THREADS=%d but wrk ran %d threads; set THREADS to -t\n",
                           nthreads, #threads))
  end
  if XCACHE then
    io.write(string.format("urls.lua: non-2xx responses: %d%s\n", total_bad,
                           next(hist) and (" (" .. hist_string(hist) .. ")") or ""))
    io.write(string.format("urls.lua: X-Cache HIT: %d of %d responses (%.1f%%)  [%s]\n",
                           hits, seen, seen > 0 and 100 * hits / seen or 0, hist_string(vals)))
  else
    io.write(string.format("urls.lua: responses with status >= 400 (wrk's count): %d; X-Cache not inspected (XCACHE=1)\n",
                           summary.errors.status))
  end
  io.write(string.format("urls.lua: socket errors: connect %d read %d write %d timeout %d\n",
                         summary.errors.connect, summary.errors.read, summary.errors.write,
                         summary.errors.timeout))
  io.write(string.format("urls.lua: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  req/s %.1f\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000,
                         summary.requests / (summary.duration / 1e6)))
end
