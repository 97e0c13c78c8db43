--[[ extendLock: renew the lock of one job held with a known token (BullMQ 6.7
  Job.extendLock, used when processing jobs manually).

  KEYS[1] the job's lock key <base><id>:lock  KEYS[2] stalled set
  ARGV[1] lock token  ARGV[2] lock ms  ARGV[3] job id

  Returns 1 when renewed: the lock holds the token again for ARGV[2] ms and the id leaves the
  stalled set (as extendLocks does). -2 when the job has no lock, -6 when another token
  holds it; nothing is changed then. Not a state transition, so no outcome key: repeating
  a renewal is harmless. ]]
local holder = redis.call("GET", KEYS[1])
if not holder then
  return -2
end
if holder ~= ARGV[1] then
  return -6
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("SREM", KEYS[2], ARGV[3])
return 1
