--[[ updateJobFields: Job.updateData / Job.updateProgress / Job.log.

  KEYS[1] job hash   KEYS[2] events stream   KEYS[3] meta hash
  KEYS[4] outcome key of this call (see includes/callOutcome)
  ARGV[1] job id   ARGV[2] "data" | "progress" | "log"
  ARGV[3] the JSON text (data, progress) or the log row
  ARGV[4] keepLogs for "log" ("" = keep all)   ARGV[5] outcome ttl in ms

  Returns {n} done, {n, 1} repeated call (n: 0, or for "log" the number of rows kept),
  -1 the job hash does not exist.
  Effects, as BullMQ 6.7 updateData / updateProgress / addLog: data replaced (no event);
  progress stored and a "progress" event with the same JSON (capped); a log row RPUSHed
  onto <job>:logs, trimmed to the last keepLogs rows.
]]
-- @include "callOutcome"
-- @include "eventsCap"

local earlier = recallOutcome(KEYS[4])
if earlier then
  return {tonumber(earlier), 1}
end
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local what, value = ARGV[2], ARGV[3]
local result = 0
if what == "data" then
  redis.call("HSET", KEYS[1], "data", value)
elseif what == "progress" then
  redis.call("HSET", KEYS[1], "progress", value)
  redis.call("XADD", KEYS[2], "MAXLEN", "~", eventsCap(KEYS[3]), "*", "event", "progress",
    "jobId", ARGV[1], "data", value)
else
  local logsKey = KEYS[1] .. ":logs"
  result = redis.call("RPUSH", logsKey, value)
  local keep = tonumber(ARGV[4])
  if keep then
    redis.call("LTRIM", logsKey, -keep, -1)
    result = math.min(keep, result)
  end
end
rememberOutcome(KEYS[4], tostring(result), ARGV[5])
return {result}
