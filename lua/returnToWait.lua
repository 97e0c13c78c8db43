--[[ returnToWait: an active job goes back to waiting without counting an attempt (BullMQ 6.7
  moveJobFromActiveToWait: a processor hit a rate limit, or moved its job to wait itself).

  KEYS[1] active  KEYS[2] wait  KEYS[3] stalled  KEYS[4] meta  KEYS[5] limiter
  KEYS[6] prioritized  KEYS[7] marker  KEYS[8] events  KEYS[9] job hash
  KEYS[10] outcome key of this call (see includes/callOutcome)
  ARGV[1] job id  ARGV[2] lock token ("0" = no lock check)  ARGV[3] outcome ttl ms

  Returns the limiter's PTTL in ms when positive, else 0 (a repeated call answers the
  limiter's current PTTL); -1 (no job hash), -2 / -6 (lock). A job no longer in active is
  left where it is (no error, as BullMQ).
  Effects: lock released, id out of stalled; when it was in active: priority > 0 -> the
  FRONT of its priority in prioritized (score priority * 2^32, no marker), else RPUSH onto
  wait (taken next) and the base marker unless paused / maxed; event "waiting" prev active
  (capped). attempts (atm / ats) untouched. ]]
-- @include "callOutcome"
-- @include "workerLock"
-- @include "eventsCap"
-- @include "pausedOrMaxed"

local function limiterTtl(limiterKey)
  local ttl = redis.call("PTTL", limiterKey)
  if ttl > 0 then
    return ttl
  end
  return 0
end

local jobKey, opKey, jobId = KEYS[9], KEYS[10], ARGV[1]
if recallOutcome(opKey) then
  return limiterTtl(KEYS[5])
end
if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
local locked = releaseWorkerLock(jobKey, KEYS[3], jobId, ARGV[2])
if locked < 0 then
  return locked
end

if redis.call("LREM", KEYS[1], 1, jobId) > 0 then
  local blocked = queueBlocked(KEYS[4], KEYS[1])
  local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
  if priority > 0 then
    redis.call("ZADD", KEYS[6], priority * 4294967296, jobId)
  else
    redis.call("RPUSH", KEYS[2], jobId)
    if not blocked then
      redis.call("ZADD", KEYS[7], 0, "0")
    end
  end
  redis.call("XADD", KEYS[8], "MAXLEN", "~", eventsCap(KEYS[4]), "*",
    "event", "waiting", "jobId", jobId, "prev", "active")
end
rememberOutcome(opKey, "1", ARGV[3])
return limiterTtl(KEYS[5])
