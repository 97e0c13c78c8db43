--[[ retryActiveJob: a failed attempt with attempts left and no backoff goes straight back to
  waiting (BullMQ 6.7 retryJob).

  KEYS[1] active  KEYS[2] wait  KEYS[3] meta  KEYS[4] job hash  KEYS[5] events
  KEYS[6] delayed  KEYS[7] prioritized  KEYS[8] pc  KEYS[9] marker  KEYS[10] stalled
  KEYS[11] outcome key of this call
  ARGV[1] base key  ARGV[2] now (ms)  ARGV[3] "1" when lifo (RPUSH), else LPUSH
  ARGV[4] job id  ARGV[5] lock token  ARGV[6] failedReason  ARGV[7] stacktrace JSON
  ARGV[8] outcome ttl ms

  Returns {1, "waiting" | "prioritized"} (a 3rd item 1 on a repeated call), or -1 (no job
  hash), -2 / -6 (lock), -3 (not active).
  Effects: due delayed jobs promoted first; failedReason and stacktrace stored; out of active;
  priority 0 -> wait (head, or tail for lifo), else prioritized with a fresh counter score;
  base marker unless paused / maxed (judged after leaving active); atm + 1; event "waiting"
  prev "active" (capped). processedOn / finishedOn untouched. ]]
-- @include "callOutcome"
-- @include "workerLock"
-- @include "eventsCap"
-- @include "takeNextJob"

local jobKey, opKey, jobId = KEYS[4], KEYS[11], ARGV[4]
local earlier = recallOutcome(opKey)
if earlier then
  return {1, earlier, 1}
end

local q = {wait = KEYS[2], active = KEYS[1], prioritized = KEYS[7], events = KEYS[5],
  delayed = KEYS[6], meta = KEYS[3], pc = KEYS[8], marker = KEYS[9]}
promoteDueJobs(q, ARGV[1], tonumber(ARGV[2]), queueBlocked(q.meta, q.active))

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
local left = leaveActive(jobKey, q.active, KEYS[10], jobId, ARGV[5], ARGV[6], ARGV[7])
if left < 0 then
  return left
end

local blocked = queueBlocked(q.meta, q.active)
local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
local landed = "waiting"
if priority > 0 then
  enqueuePrioritized(q.prioritized, q.pc, q.marker, jobId, priority, blocked)
  landed = "prioritized"
else
  enqueueWaiting(q.wait, q.marker, jobId, ARGV[3] == "1", blocked)
end
redis.call("HINCRBY", jobKey, "atm", 1)
redis.call("XADD", q.events, "MAXLEN", "~", eventsCap(q.meta), "*",
  "event", "waiting", "jobId", jobId, "prev", "active")

rememberOutcome(opKey, landed, ARGV[8])
return {1, landed}
