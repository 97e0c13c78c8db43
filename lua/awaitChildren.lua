--[[ awaitChildren: an active job parks itself in waiting-children until its children are
  done (BullMQ 6.7 moveToWaitingChildren, the "process step jobs" pattern).

  KEYS[1] active  KEYS[2] waiting-children  KEYS[3] job hash  KEYS[4] job :dependencies
  KEYS[5] job :unsuccessful  KEYS[6] stalled  KEYS[7] events
  KEYS[8] outcome key of this call (see includes/callOutcome)
  ARGV[1] lock token ("0" = no lock check)  ARGV[2] a child job key to wait for ("" = any)
  ARGV[3] now (ms)  ARGV[4] job id  ARGV[5] outcome ttl ms

  Returns 0 (moved), 1 (nothing pending: the named child is not a pending dependency, or
  there are none; the job stays active and locked), -1 (no job hash), -9 (a child failed
  with failParentOnFailure, :unsuccessful non-empty), -2 / -6 (lock), -3 (not in active).
  Effects when moved: lock released, id out of stalled and active, ZADD waiting-children
  score now, event "waiting-children" (prev active; uncapped, as BullMQ). A repeated call
  returns the first run's 0 / 1. ]]
-- @include "callOutcome"
-- @include "workerLock"

local jobKey, opKey, jobId = KEYS[3], KEYS[8], ARGV[4]
local earlier = recallOutcome(opKey)
if earlier then
  return tonumber(earlier)
end

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
if redis.call("ZCARD", KEYS[5]) ~= 0 then
  return -9
end

local pending
if ARGV[2] ~= "" then
  pending = redis.call("SISMEMBER", KEYS[4], ARGV[2]) == 1
else
  pending = redis.call("SCARD", KEYS[4]) > 0
end
if not pending then
  rememberOutcome(opKey, "1", ARGV[5])
  return 1
end

local left = leaveActive(jobKey, KEYS[1], KEYS[6], jobId, ARGV[1], false, "")
if left < 0 then
  return left
end
redis.call("ZADD", KEYS[2], tonumber(ARGV[3]), jobId)
redis.call("XADD", KEYS[7], "*", "event", "waiting-children", "jobId", jobId, "prev", "active")
rememberOutcome(opKey, "0", ARGV[5])
return 0
