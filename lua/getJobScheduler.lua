--[[ getJobScheduler: one job scheduler as stored (BullMQ 6.7 getJobScheduler).
  KEYS[1] repeat zset  ARGV[1] scheduler id
  Returns {flat repeat:<id> hash, next ms} or {} when the id is not in the zset. ]]
local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if score then
  return {redis.call("HGETALL", KEYS[1] .. ":" .. ARGV[1]), score}
end
return {}
