--[[ restoreParentDependency(jobKey, fromState)
  A child of a flow that is retried becomes one of its parent's pending dependencies again:
  from "failed" it leaves the parent's ":unsuccessful" zset (failParentOnFailure) or its
  ":failed" hash (ignoreDependencyOnFailure / continueParentOnFailure); from "completed" it
  leaves ":processed". Only a child found in one of those goes back into ":dependencies"
  (a removeDependencyOnFailure child is not). The parent's own state is left alone. ]]
local function restoreParentDependency(jobKey, fromState)
  local parentKey = redis.call("HGET", jobKey, "parentKey")
  if not parentKey or redis.call("EXISTS", parentKey) == 0 then
    return
  end
  local recorded
  if fromState == "completed" then
    recorded = redis.call("HDEL", parentKey .. ":processed", jobKey) == 1
  else
    recorded = redis.call("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
    if not recorded then
      recorded = redis.call("HDEL", parentKey .. ":failed", jobKey) == 1
    end
  end
  if recorded then
    redis.call("SADD", parentKey .. ":dependencies", jobKey)
  end
end
