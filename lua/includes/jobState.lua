--[[ stateOfJob(queuePrefix, jobId): where a job is now, read in one atomic step.
  queuePrefix is "<prefix>:<queue>:" (the job hash key without the id). The structures are
  checked in BullMQ's order: the sorted sets completed, failed, delayed, prioritized; the
  lists active, wait and the legacy v5 paused list (both "waiting"); waiting-children.
  Returns the state's name, or "unknown" when the id is in none of them.
  A refusal code -3 ("not in the expected state") carries this as its second item, so the
  caller learns the actual state without another round trip. ]]
local function stateOfJob(queuePrefix, jobId)
  for _, name in ipairs({"completed", "failed", "delayed", "prioritized"}) do
    if redis.call("ZSCORE", queuePrefix .. name, jobId) then
      return name
    end
  end
  for _, entry in ipairs({{"active", "active"}, {"wait", "waiting"}, {"paused", "waiting"}}) do
    if redis.call("LPOS", queuePrefix .. entry[1], jobId) then
      return entry[2]
    end
  end
  if redis.call("ZSCORE", queuePrefix .. "waiting-children", jobId) then
    return "waiting-children"
  end
  return "unknown"
end

--[[ notInState(jobKey, jobId): the reply {-3, actual state} of a job found elsewhere. ]]
local function notInState(jobKey, jobId)
  return {-3, stateOfJob(string.sub(jobKey, 1, #jobKey - #jobId), jobId)}
end
