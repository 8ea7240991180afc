-- wrk script: POST /api/v1/validate with a different user (and that user's current code) per
-- request, so that every request is a real, accepting validation. Each wrk thread takes every
-- n-th line of the bodies file, so no two requests carry the same user and code.
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  local n = tonumber(os.getenv("KEYFOB_BENCH_THREADS"))
  local k = 0
  for line in io.lines(os.getenv("KEYFOB_BENCH_BODIES")) do
    k = k + 1
    if (k - 1) % n == tid - 1 then
      bodies[#bodies + 1] = line
    end
  end
  idx = 0
  headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. os.getenv("KEYFOB_BENCH_KEY")
end

function request()
  idx = idx + 1
  if idx > #bodies then
    idx = #bodies  -- out of fresh users: the run is sized so that this does not happen
  end
  return wrk.format("POST", "/api/v1/validate", headers, bodies[idx])
end

function done(summary, latency, requests)
  io.write(string.format(
    "KEYFOB {\"requests\": %d, \"seconds\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, " ..
    "\"non_2xx\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
