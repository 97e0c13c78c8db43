--[[ extendLocks: renew the locks of a worker's active jobs (BullMQ extendLocks).

  KEYS[1] stalled set
  ARGV[1] base key  ARGV[2] lock ms  ARGV[3..] pairs of job id, lock token

  Returns the ids whose lock is gone or held by another token (not renewed).
  A renewed lock gets PX lock ms again and its id leaves the stalled set. ]]
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = ARGV[1] .. id .. ":lock"
  if redis.call("GET", lockKey) == token then
    redis.call("SET", lockKey, token, "PX", ARGV[2])
    redis.call("SREM", KEYS[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
