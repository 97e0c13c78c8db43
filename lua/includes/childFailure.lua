--[[ childFailed(parentJson, childKey, reason, now): a flow child failed for good; apply the
  policy flag of its "parent" field (BullMQ moveChildFromDependenciesIfNeeded):
    fpof  out of dependencies -> parent :unsuccessful (score now); a parent in waiting-children
          (or delayed: delay reset to 0) gets defa "child <key> failed" and is released so a
          worker fails it; a parent elsewhere that is not already failed just gets defa
    cpof  out of dependencies -> parent :failed[childKey] = reason; parent released even with
          other children pending
    idof  out of dependencies -> released if none pending; :failed[childKey] = reason
    rdof  out of dependencies -> released if none pending
    none  nothing: the parent keeps waiting for this child ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "releaseParent"
-- @include "moveParentOut"
local function childFailed(parentJson, childKey, reason, now)
  if not parentJson then
    return
  end
  local parent = cjson.decode(parentJson)
  local pq, parentId = parent["queueKey"], parent["id"]
  local parentKey = pq .. ":" .. parentId
  local depsKey = parentKey .. ":dependencies"
  if not (parent["fpof"] or parent["cpof"] or parent["idof"] or parent["rdof"]) then
    return
  end
  if redis.call("SREM", depsKey, childKey) == 0 then
    return
  end
  if parent["fpof"] then
    redis.call("ZADD", parentKey .. ":unsuccessful", now, childKey)
    if redis.call("EXISTS", parentKey) == 0 then
      return
    end
    local reasonText = "child " .. childKey .. " failed"
    local holder = nil
    if redis.call("ZSCORE", pq .. ":waiting-children", parentId) then
      holder = pq .. ":waiting-children"
    elseif redis.call("ZSCORE", pq .. ":delayed", parentId) then
      holder = pq .. ":delayed"
      redis.call("HSET", parentKey, "delay", 0)
    end
    if holder then
      redis.call("ZREM", holder, parentId)
      redis.call("HSET", parentKey, "defa", reasonText)
      moveParentOut(pq, parentKey, parentId, now)
    elseif not redis.call("ZSCORE", pq .. ":failed", parentId) then
      redis.call("HSET", parentKey, "defa", reasonText)
    end
  elseif parent["cpof"] then
    redis.call("HSET", parentKey .. ":failed", childKey, reason)
    if redis.call("EXISTS", parentKey) == 1
        and redis.call("ZREM", pq .. ":waiting-children", parentId) == 1 then
      moveParentOut(pq, parentKey, parentId, now)
    end
  else
    releaseParentIfReady(parentKey, now)
    if parent["idof"] then
      redis.call("HSET", parentKey .. ":failed", childKey, reason)
    end
  end
end
