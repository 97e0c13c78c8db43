--[[ rateLimitTtl: how long a queue stays rate limited (BullMQ 6.7 getRateLimitTtl). Read-only
  but for one cleanup: a full limiter whose PTTL is 0 is deleted.

  KEYS[1] limiter  KEYS[2] meta
  ARGV[1] max jobs ("0" = use meta "max"; when neither, the limiter's raw PTTL)

  Returns ms left (> 0) when the limiter holds at least max jobs, else 0; without any max,
  PTTL itself (-2 no key, -1 no expiry). ]]
local function ttlWhenFull(maxJobs, limiterKey)
  local used = tonumber(redis.call("GET", limiterKey) or 0)
  if maxJobs and maxJobs <= used then
    local ttl = redis.call("PTTL", limiterKey)
    if ttl == 0 then
      redis.call("DEL", limiterKey)
    end
    if ttl > 0 then
      return ttl
    end
  end
  return 0
end

if ARGV[1] ~= "0" then
  return ttlWhenFull(tonumber(ARGV[1]), KEYS[1])
end
local metaMax = redis.call("HGET", KEYS[2], "max")
if metaMax then
  return ttlWhenFull(tonumber(metaMax), KEYS[1])
end
return redis.call("PTTL", KEYS[1])
