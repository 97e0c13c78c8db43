--[[ getJobState: where a job is, read in one atomic step (read-only).

  KEYS[1] completed  KEYS[2] failed  KEYS[3] delayed  KEYS[4] prioritized
  KEYS[5] active     KEYS[6] wait    KEYS[7] paused (legacy v5 list)
  KEYS[8] waiting-children
  ARGV[1] job id

  Returns "completed", "failed", "delayed", "prioritized", "active", "waiting" (the wait
  list or a legacy paused list), "waiting-children" or "unknown" - checked in BullMQ's order.
]]
local id = ARGV[1]
local sets = {{1, "completed"}, {2, "failed"}, {3, "delayed"}, {4, "prioritized"}}
for _, entry in ipairs(sets) do
  if redis.call("ZSCORE", KEYS[entry[1]], id) then
    return entry[2]
  end
end
local lists = {{5, "active"}, {6, "waiting"}, {7, "waiting"}}
for _, entry in ipairs(lists) do
  if redis.call("LPOS", KEYS[entry[1]], id) then
    return entry[2]
  end
end
if redis.call("ZSCORE", KEYS[8], id) then
  return "waiting-children"
end
return "unknown"
