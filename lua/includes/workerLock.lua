--[[ releaseWorkerLock(jobKey, stalledKey, jobId, token)
  The lock check of every transition out of "active". Token "0" means "no lock was taken" and
  skips the check. Otherwise the lock must hold this token: then it is deleted, the id leaves
  the stalled set and 0 is returned; another token -> -6; no lock at all -> -2. ]]
local function releaseWorkerLock(jobKey, stalledKey, jobId, token)
  if token == "0" then
    return 0
  end
  local lockKey = jobKey .. ":lock"
  local holder = redis.call("GET", lockKey)
  if not holder then
    return -2
  end
  if holder ~= token then
    return -6
  end
  redis.call("DEL", lockKey)
  redis.call("SREM", stalledKey, jobId)
  return 0
end

--[[ leaveActive(jobKey, activeKey, stalledKey, jobId, token, reason, stack)
  The common first half of every move out of "active" for a job known to exist: the lock
  check above (-2 / -6), then, for a failed attempt (reason ~= false), failedReason and, when
  stack is not "", stacktrace written, then LREM from active (-3 when it was not there; as in
  BullMQ the lock and fields are not restored then). Returns 0 or the error code. ]]
local function leaveActive(jobKey, activeKey, stalledKey, jobId, token, reason, stack)
  local locked = releaseWorkerLock(jobKey, stalledKey, jobId, token)
  if locked < 0 then
    return locked
  end
  if reason then
    if stack ~= "" then
      redis.call("HSET", jobKey, "failedReason", reason, "stacktrace", stack)
    else
      redis.call("HSET", jobKey, "failedReason", reason)
    end
  end
  if redis.call("LREM", activeKey, "-1", jobId) == 0 then
    return -3
  end
  return 0
end
