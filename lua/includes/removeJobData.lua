--[[ Deleting jobs for good.
  deleteJobKeys(jobKey, keepDedup): the hash and its :logs, :dependencies, :processed,
    :failed and :unsuccessful sub-keys (not :lock), plus, unless keepDedup, the deduplication
    key (and its parked dn: hash) when this job owns it. keepDedup is for the keep policies
    of finished jobs, where BullMQ leaves a live dedup window (ttl) running.
  detachFromParent(jobKey, now): take the job out of its parent's :dependencies; a parent
    left with none that waits for children is released (includes/releaseParent). ]]
local function deleteJobKeys(jobKey, keepDedup)
  local dedupId = not keepDedup and redis.call("HGET", jobKey, "deid")
  if dedupId then
    local cut = string.find(jobKey, ":[^:]*$")
    local base = string.sub(jobKey, 1, cut)
    local dedupKey = base .. "de:" .. dedupId
    if redis.call("GET", dedupKey) == string.sub(jobKey, cut + 1) then
      redis.call("DEL", dedupKey, base .. "dn:" .. dedupId)
    end
  end
  redis.call("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end

local function detachFromParent(jobKey, now)
  local parentKey = redis.call("HGET", jobKey, "parentKey")
  if parentKey and redis.call("SREM", parentKey .. ":dependencies", jobKey) == 1 then
    releaseParentIfReady(parentKey, now)
  end
end
