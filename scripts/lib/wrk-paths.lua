-- wrk script for scripts/bench-api: GET requests over a list of paths, with an optional bearer
-- token, and a one-line JSON summary at the end (latency in ms, nearest-rank percentiles as wrk
-- computes them).
--
--   wrk -s scripts/lib/wrk-paths.lua ... URL -- PATHS_FILE [TOKEN]
--
-- PATHS_FILE holds one path (with its query) per line. Thread k (from 0) walks the list from
-- k/2 of the way in, so that two threads (what the bench runs) spread over the whole list. A
-- response other than 2xx/3xx counts in "non_2xx" (wrk's own status error count).

local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  if #paths == 0 then error("no paths in " .. args[1]) end
  headers = {}
  if args[2] ~= nil and args[2] ~= "" then headers["Authorization"] = "Bearer " .. args[2] end
  i = math.floor((offset or 0) * #paths / 2) % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"tool":"wrk","requests":%d,"seconds":%.3f,"requests_per_s":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
