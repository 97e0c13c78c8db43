--[[ jobFinishedState: has a job finished, and with what outcome (read-only, atomic).

  KEYS[1] completed set  KEYS[2] failed set  KEYS[3] job hash
  ARGV[1] job id

  Returns {-1} when the job hash is gone, {1, returnvalue} when the id is in the completed
  set, {2, failedReason} when it is in the failed set, {0} otherwise. A missing field comes
  back as false (nil in the reply).
]]
local jobId = ARGV[1]
if redis.call("EXISTS", KEYS[3]) == 0 then
  return {-1}
end
local outcomes = {{KEYS[1], 1, "returnvalue"}, {KEYS[2], 2, "failedReason"}}
for _, outcome in ipairs(outcomes) do
  if redis.call("ZSCORE", outcome[1], jobId) ~= false then
    return {outcome[2], redis.call("HGET", KEYS[3], outcome[3])}
  end
end
return {0}
