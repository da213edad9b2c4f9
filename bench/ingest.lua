-- wrk script for bench/ingest.py: POST a pre-signed, unique GitHub delivery per request.
--
-- Arguments (after `--`): pool_file prefix_file suffix_file thread_count
--   pool_file    one "<delivery id> sha256=<hex>" line per request (bench/signing.py)
--   prefix_file  body bytes before the delivery id
--   suffix_file  body bytes after it; body = prefix .. id .. suffix, exactly what was signed
-- Each wrk thread takes every thread_count-th line, so no two threads send the same id.
-- If a thread runs out of lines it starts over and counts `wrapped` (the run is then
-- flagged: repeated ids are answered 200 duplicate by Hookrunner).
-- done() prints one line "BENCH_JSON {...}" with counts, statuses and latency percentiles.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

function init(args)
  local thread_count = tonumber(args[4])
  body_prefix = read_all(args[2])
  body_suffix = read_all(args[3])
  ids, sigs = {}, {}
  pool_n, pool_i, wrapped = 0, 0, 0
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % thread_count == tid - 1 then
      local id, sig = line:match("^(%S+) (%S+)$")
      pool_n = pool_n + 1
      ids[pool_n] = id
      sigs[pool_n] = sig
    end
    line_no = line_no + 1
  end
  statuses = {}
end

function request()
  pool_i = pool_i + 1
  if pool_i > pool_n then
    pool_i = 1
    wrapped = wrapped + 1
  end
  local id = ids[pool_i]
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-Hub-Signature-256"] = sigs[pool_i],
  }
  return wrk.format("POST", nil, headers, body_prefix .. id .. body_suffix)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged, wrapped_total, pool_total = {}, 0, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + n
    end
    wrapped_total = wrapped_total + thread:get("wrapped")
    pool_total = pool_total + thread:get("pool_n")
  end
  local parts = {}
  for code, n in pairs(merged) do
    parts[#parts + 1] = string.format('"%d": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"statuses": {%s}, "wrapped": %d, "pool": %d, '
      .. '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, '
      .. '"p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ", "), wrapped_total, pool_total,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)
  ))
end
