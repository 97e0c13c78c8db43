--[[ jobFinishedState: has a job finished, and with what outcome (read-only, atomic).

  KEYS[1] completed set  KEYS[2] failed set  KEYS[3] job hash  KEYS[4] event stream
  ARGV[1] job id
  ARGV[2] how many of the newest events to search when the job hash is gone

  Returns {1, returnvalue} when the id is in the completed set, {2, failedReason} when it is
  in the failed set, {0} when it is elsewhere. When the hash is gone (a job removed as it
  finished, removeOnComplete/removeOnFail), the newest ARGV[2] events are searched for its
  last "completed" or "failed" entry, answered the same way; {-1} when there is none.
  A missing field comes back as false (nil in the reply).
]]
local jobId = ARGV[1]
if redis.call("EXISTS", KEYS[3]) == 1 then
  local outcomes = {{KEYS[1], 1, "returnvalue"}, {KEYS[2], 2, "failedReason"}}
  for _, outcome in ipairs(outcomes) do
    if redis.call("ZSCORE", outcome[1], jobId) ~= false then
      return {outcome[2], redis.call("HGET", KEYS[3], outcome[3])}
    end
  end
  return {0}
end
local wanted = {completed = {1, "returnvalue"}, failed = {2, "failedReason"}}
local entries = redis.call("XREVRANGE", KEYS[4], "+", "-", "COUNT", tonumber(ARGV[2]))
for _, entry in ipairs(entries) do
  local fields = {}
  local flat = entry[2]
  for i = 1, #flat, 2 do
    fields[flat[i]] = flat[i + 1]
  end
  local kind = wanted[fields["event"] or ""]
  if kind and fields["jobId"] == jobId then
    return {kind[1], fields[kind[2]]}
  end
end
return {-1}
