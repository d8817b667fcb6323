-- wrk script of the webhook benchmarks.
-- args: BODY_FILE ("-" for a GET without a body) EXPECT (text every good answer holds) DELAY_MS
-- (pause of each connection between its requests; 0 = flat out).
-- WRK_FRESH=1 in the environment: every request's objects annotation starts with a YAML comment of
-- its own, so the webhook has never seen the list and caches nothing (the objects are the same).
-- Read when the script loads: wrk decides then whether requests are built one by one.
-- Counts answers that are not HTTP 200 holding EXPECT as bad, and prints one JSON line.

local threads = {}
fresh = os.getenv("WRK_FRESH") == "1"

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  good = 0
  bad = 0
  expect = args[2]
  pause = tonumber(args[3]) or 0
  sent = 0
  if args[1] ~= "-" then
    local f = assert(io.open(args[1], "rb"))
    wrk.method = "POST"
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
  end
  if fresh then
    local marker = '"secrets-injector.io/objects":"'
    local at = assert(string.find(wrk.body, marker, 1, true), "no objects annotation to vary")
    head = string.sub(wrk.body, 1, at + #marker - 1)
    tail = string.sub(wrk.body, at + #marker)
  end
end

if fresh then
  function request()
    sent = sent + 1
    -- A YAML comment line (JSON-escaped newline) in front of the list.
    return wrk.format(nil, nil, nil, head .. "# " .. thread_id .. "-" .. sent .. "\\n" .. tail)
  end
end

function delay()
  return pause
end

function response(status, headers, body)
  if status == 200 and (expect == "" or string.find(body, expect, 1, true)) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"good":%d,"bad":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, g, b,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
