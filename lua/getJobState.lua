--[[ getJobState: where a job is, read in one atomic step (read-only).

  KEYS[1] completed  KEYS[2] failed  KEYS[3] delayed  KEYS[4] prioritized
  KEYS[5] active     KEYS[6] wait    KEYS[7] paused (legacy v5 list)
  KEYS[8] waiting-children
  ARGV[1] job id

  Returns "completed", "failed", "delayed", "prioritized", "active", "waiting" (the wait
  list or a legacy paused list), "waiting-children" or "unknown" - checked in BullMQ's order
  (see includes/jobState; the KEYS name every structure it reads).
]]
-- @include "jobState"

return stateOfJob(string.sub(KEYS[1], 1, #KEYS[1] - #"completed"), ARGV[1])
