--[[ delayActiveJob: a failed attempt with a backoff goes to the delayed set (BullMQ 6.7
  moveToDelayed), optionally taking the next job in the same call.

  KEYS[1] marker  KEYS[2] active  KEYS[3] prioritized  KEYS[4] delayed  KEYS[5] job hash
  KEYS[6] events  KEYS[7] meta  KEYS[8] stalled  KEYS[9] wait  KEYS[10] limiter  KEYS[11] pc
  KEYS[12] outcome key of this call
  ARGV[1] base key  ARGV[2] now (ms)  ARGV[3] job id  ARGV[4] lock token
  ARGV[5] delay ms (relative)  ARGV[6] failedReason  ARGV[7] stacktrace JSON
  ARGV[8] "1" = fetch the next job  ARGV[9] lock ms  ARGV[10] limiter max ("" none)
  ARGV[11] limiter window ms ("" none)  ARGV[12] worker name ("" none)  ARGV[13] outcome ttl
  ARGV[14] "1" = a manual move (BullMQ's skipAttempt, Job.move_to_delayed): no attempt
  counted and no failedReason / stacktrace written (absent = "0")

  Returns 0, or a takeNextJob reply carrying a job; -1 / -2 / -6 / -3 as finishJob.
  Effects: failedReason / stacktrace stored; out of active; score from includes/delayedScore
  for now + delay; atm + 1; delay field = the relative delay; event "delayed" with the
  absolute due ms (capped); when no job is handed back, the delay marker. ]]
-- @include "callOutcome"
-- @include "workerLock"
-- @include "eventsCap"
-- @include "takeNextJob"

local jobKey, opKey, jobId, base = KEYS[5], KEYS[12], ARGV[3], ARGV[1]
local now = tonumber(ARGV[2])
local earlier = recallOutcome(opKey)
if earlier then
  return replayFetched(base, earlier) or 0
end

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
local manual = ARGV[14] == "1"
local left = leaveActive(jobKey, KEYS[2], KEYS[8], jobId, ARGV[4], (not manual) and ARGV[6],
  ARGV[7])
if left < 0 then
  return left
end
local delay = tonumber(ARGV[5])
local score, due = delayedScore(KEYS[4], now, delay)
if not manual then
  redis.call("HINCRBY", jobKey, "atm", 1)
end
redis.call("HSET", jobKey, "delay", ARGV[5])
redis.call("ZADD", KEYS[4], score, jobId)
redis.call("XADD", KEYS[6], "MAXLEN", "~", eventsCap(KEYS[7]), "*",
  "event", "delayed", "jobId", jobId, "delay", due)

if ARGV[8] == "1" then
  local q = {wait = KEYS[9], active = KEYS[2], prioritized = KEYS[3], events = KEYS[6],
    limiter = KEYS[10], delayed = KEYS[4], meta = KEYS[7], pc = KEYS[11], marker = KEYS[1]}
  local reply = takeNextJob(q, base, ARGV[2], {token = ARGV[4], lockMs = ARGV[9],
    limitMax = ARGV[10], limitWindow = ARGV[11], name = ARGV[12]})
  if reply and type(reply[1]) == "table" then
    rememberOutcome(opKey, fetchedOutcome(reply), ARGV[13])
    return reply
  end
end
markDelayed(KEYS[1], KEYS[4])
rememberOutcome(opKey, "0", ARGV[13])
return 0
