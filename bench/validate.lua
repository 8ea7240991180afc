-- wrk script: one validation per request, for keyfob (POST /api/v1/validate, JSON) or
-- privacyIDEA (POST /validate/check, form), with the same users, codes and counting for both.
--
-- The bench writes a users file, one user a line: "NAME CODE1 CODE2 …". Each wrk thread takes
-- every n-th line, so no two threads send the same user. BENCH_MODE says which code a request
-- carries:
--   step    each request the next user, with the code of the current time step: column
--           (now // BENCH_PERIOD) - BENCH_STEP0 + 1 (the file holds a few steps ahead); the
--           index where each thread's column changed is kept for a replay run
--   replay  the users a step run sent, again, each with the code it was sent then
--           (BENCH_MARKS, printed by that run): every answer should be a replay refusal
--   cycle   HOTP: user (k mod n), column (k div n) + 1: every request the next counter
--   fixed   each request the next user, column 1 (wrong codes, unknown users)
-- Only real accepts count: response() reads every body (keyfob {"result":"accept"},
-- privacyIDEA result.value true). Every run prints one line "BENCH {json}" at the end.
--
-- Environment: BENCH_TARGET (keyfob | privacyidea), BENCH_USERS, BENCH_MODE, BENCH_THREADS,
-- BENCH_STEP0 and BENCH_PERIOD (step), BENCH_MARKS (replay), BENCH_KEY (keyfob API key with
-- role validate), BENCH_REALM (privacyIDEA).
--
-- Older callers (bench_server.py) set KEYFOB_BENCH_BODIES (a JSON body a line),
-- KEYFOB_BENCH_KEY and KEYFOB_BENCH_THREADS: those bodies are sent as they are, to keyfob.
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local function split(s, sep)
  local out = {}
  for part in string.gmatch(s, "([^" .. sep .. "]+)") do
    out[#out + 1] = part
  end
  return out
end

function init(args)
  legacy = os.getenv("KEYFOB_BENCH_BODIES")
  target = legacy and "keyfob" or os.getenv("BENCH_TARGET")
  mode = legacy and "legacy" or os.getenv("BENCH_MODE")
  local n = tonumber(os.getenv(legacy and "KEYFOB_BENCH_THREADS" or "BENCH_THREADS"))
  users, codes = {}, {}
  local k = 0
  for line in io.lines(legacy or os.getenv("BENCH_USERS")) do
    k = k + 1
    if (k - 1) % n == tid - 1 then
      if legacy then
        users[#users + 1] = line
      else
        local f = split(line, " ")
        users[#users + 1] = f[1]
        codes[#codes + 1] = { unpack(f, 2) }
      end
    end
  end
  ncols = codes[1] and #codes[1] or 1
  period = tonumber(os.getenv("BENCH_PERIOD") or "30")
  step0 = tonumber(os.getenv("BENCH_STEP0") or "0")
  sent, accepts, rejects, others, exhausted = 0, 0, 0, 0, 0
  other_status = ""
  marks, lastcol = "", -1
  if mode == "replay" then
    -- "count;idx:col,idx:col" for this thread, threads separated by "|"
    local mine = split(os.getenv("BENCH_MARKS"), "|")[tid] or "0;"
    local parts = split(mine .. ";", ";")
    replay_count = tonumber(parts[1])
    replay_marks = {}
    for _, m in ipairs(split(parts[2] or "", ",")) do
      local p = split(m, ":")
      replay_marks[#replay_marks + 1] = { tonumber(p[1]), tonumber(p[2]) }
    end
    if replay_count > #users then replay_count = #users end
  end
  headers = {}
  if target == "keyfob" then
    path = "/api/v1/validate"
    headers["Content-Type"] = "application/json"
    headers["Authorization"] = "Bearer " ..
      (legacy and os.getenv("KEYFOB_BENCH_KEY") or os.getenv("BENCH_KEY"))
  else
    path = "/validate/check"
    realm = os.getenv("BENCH_REALM")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end

local function body(user, code)
  if target == "keyfob" then
    return '{"username":"' .. user .. '","code":"' .. code .. '"}'
  end
  return "user=" .. user .. "&realm=" .. realm .. "&pass=" .. code
end

local function col_at(idx)
  local col = replay_marks[1] and replay_marks[1][2] or 1
  for _, m in ipairs(replay_marks) do
    if m[1] <= idx then col = m[2] end
  end
  return col
end

function request()
  sent = sent + 1
  local n = #users
  if mode == "legacy" then
    local i = sent
    if i > n then i = n end  -- out of fresh users: the run is sized so that this does not happen
    return wrk.format("POST", path, headers, users[i])
  end
  local i, col
  if mode == "step" then
    i = sent
    if i > n then
      exhausted = exhausted + 1
      i = (i - 1) % n + 1
    end
    col = math.floor(os.time() / period) - step0 + 1
    if col < 1 then col = 1 end
    if col > ncols then col = ncols end
    if col ~= lastcol then
      marks = marks .. sent .. ":" .. col .. ","
      lastcol = col
    end
  elseif mode == "replay" then
    if replay_count == 0 then
      i, col = 1, 1
    else
      i = (sent - 1) % replay_count + 1
      col = col_at(i)
    end
  elseif mode == "cycle" then
    i = (sent - 1) % n + 1
    col = math.floor((sent - 1) / n) + 1
    if col > ncols then
      exhausted = exhausted + 1
      col = ncols
    end
  else
    i = (sent - 1) % n + 1
    col = 1
  end
  return wrk.format("POST", path, headers, body(users[i], codes[i][col]))
end

function response(status, headers, body)
  if target == "keyfob" then
    if status == 200 and string.find(body, '"result":"accept"', 1, true) then
      accepts = accepts + 1
      return
    elseif status == 200 and string.find(body, '"result":"reject"', 1, true) then
      rejects = rejects + 1
      return
    end
  else
    local result = string.match(body, '"result":%s*(%b{})')
    if status == 200 and result and string.find(result, '"value":%s*true') then
      accepts = accepts + 1
      return
    elseif result and string.find(result, '"status":%s*[tf]') and
        (status == 200 or status == 400) then
      -- 200 with value false (wrong code, replay), 400 with status false (ERR904: no such user)
      rejects = rejects + 1
      return
    end
  end
  others = others + 1
  if not string.find(other_status, tostring(status), 1, true) then
    other_status = other_status .. status .. " "
  end
end

function done(summary, latency, requests)
  local acc, rej, oth, exh, sent_all = 0, 0, 0, 0, 0
  local counts, statuses = {}, ""
  for _, t in ipairs(threads) do
    acc = acc + (t:get("accepts") or 0)
    rej = rej + (t:get("rejects") or 0)
    oth = oth + (t:get("others") or 0)
    exh = exh + (t:get("exhausted") or 0)
    sent_all = sent_all + (t:get("sent") or 0)
    -- a request is counted in "sent" when built; the last ones may not have been answered
    counts[#counts + 1] = (t:get("sent") or 0) .. ";" .. (t:get("marks") or "")
    statuses = statuses .. (t:get("other_status") or "")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\": %d, \"seconds\": %.3f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, " ..
    "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f, \"accepts\": %d, \"rejects\": %d, " ..
    "\"others\": %d, \"other_status\": \"%s\", \"exhausted\": %d, \"sent\": %d, " ..
    "\"non_2xx\": %d, \"socket_errors\": %d, \"marks\": \"%s\"}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    latency.mean / 1000, acc, rej, oth, statuses, exh, sent_all, e.status,
    e.connect + e.read + e.write + e.timeout, table.concat(counts, "|")))
  -- the old single-server caller reads this line
  io.write(string.format(
    "KEYFOB {\"requests\": %d, \"seconds\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, " ..
    "\"non_2xx\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
