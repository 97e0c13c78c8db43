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
