--[[ Deleting jobs for good.
  deleteJobKeys(jobKey, keepDedup): the hash and its :logs, :dependencies, :processed,
    :failed and :unsuccessful sub-keys (not :lock), plus, unless keepDedup, the deduplication
    key (and its parked dn: hash) when this job owns it. keepDedup is for the keep policies
    of finished jobs, where BullMQ leaves a live dedup window (ttl) running.
  detachFromParent(jobKey, hardBase): take a job that is being deleted out of its parent's
    :dependencies. A parent left with none that waits for children leaves waiting-children as
    BullMQ's removals do (not as a finished child releases it: its delay and priority are not
    looked at): it goes to the front of its queue's wait list (base marker unless that queue is
    blocked) with a "waiting" event prev "waiting-children". A hard removal (drain, clean:
    hardBase = the base key of the queue being purged) instead deletes a parent of that same
    queue too, recursively and without events, and moves a parent of another queue to its wait
    list without an event. ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
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

local function detachFromParent(jobKey, hardBase)
  local parentKey = redis.call("HGET", jobKey, "parentKey")
  if not parentKey or redis.call("SREM", parentKey .. ":dependencies", jobKey) == 0 then
    return
  end
  if redis.call("SCARD", parentKey .. ":dependencies") > 0 then
    return
  end
  local cut = string.find(parentKey, ":[^:]*$")
  local parentBase, parentId = string.sub(parentKey, 1, cut), string.sub(parentKey, cut + 1)
  if redis.call("ZREM", parentBase .. "waiting-children", parentId) == 0 then
    return
  end
  if hardBase and parentBase == hardBase then
    detachFromParent(parentKey, hardBase)
    deleteJobKeys(parentKey)
    return
  end
  local blocked = queueBlocked(parentBase .. "meta", parentBase .. "active")
  enqueueWaiting(parentBase .. "wait", parentBase .. "marker", parentId, true, blocked)
  if not hardBase then
    redis.call("XADD", parentBase .. "events", "*", "event", "waiting", "jobId", parentId,
      "prev", "waiting-children")
  end
end
