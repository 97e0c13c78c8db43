--[[ fetchJob: a worker takes the next job (BullMQ 6.7 moveToActive): due delayed jobs are
  promoted, the rate limit and a paused / maxed queue respected, and the job locked with the
  worker's token. Details in includes/takeNextJob.

  KEYS[1] wait  KEYS[2] active  KEYS[3] prioritized  KEYS[4] events  KEYS[5] limiter
  KEYS[6] delayed  KEYS[7] meta  KEYS[8] pc  KEYS[9] marker
  ARGV[1] base key <prefix>:<queue>:  ARGV[2] now (ms)  ARGV[3] lock token
  ARGV[4] lock ms  ARGV[5] limiter max ("" none)  ARGV[6] limiter window ms ("" none)
  ARGV[7] worker name ("" none)

  Returns {flat job hash, id, 0, 0} | {0, 0, rate-limit ttl, 0} | {0, 0, 0, next due ms}
  | {0, 0, 0, 0} (paused, maxed or nothing). No outcome key: a repeated fetch after a lost
  reply leaves at worst a locked job that the stalled checker returns to wait. ]]
-- @include "takeNextJob"

local q = {wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
  limiter = KEYS[5], delayed = KEYS[6], meta = KEYS[7], pc = KEYS[8], marker = KEYS[9]}
local reply = takeNextJob(q, ARGV[1], ARGV[2], {token = ARGV[3], lockMs = ARGV[4],
  limitMax = ARGV[5], limitWindow = ARGV[6], name = ARGV[7]})
return reply or {0, 0, 0, 0}
