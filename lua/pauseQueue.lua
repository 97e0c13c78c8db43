--[[ pauseQueue: Queue.pause / Queue.resume with BullMQ 6 semantics.

  KEYS[1] meta hash   KEYS[2] marker zset   KEYS[3] events stream
  KEYS[4] wait list   KEYS[5] legacy paused list (v5)   KEYS[6] prioritized
  KEYS[7] delayed zset
  ARGV[1] "pause" | "resume"

  Returns the number of legacy entries merged into wait (resume) or 0.
  pause: meta "paused" = 1, marker deleted, "paused" event; jobs stay in wait.
  resume: meta "paused" removed; a legacy v5 "paused" list is merged into wait (RENAME
  when wait is absent, else pushed onto the tail in order, so those older jobs run first);
  base marker when wait/prioritized hold jobs, else the delay marker; "resumed" event.
]]
local CHUNK = 5000
if ARGV[1] == "pause" then
  redis.call("HSET", KEYS[1], "paused", 1)
  redis.call("DEL", KEYS[2])
  redis.call("XADD", KEYS[3], "*", "event", "paused")
  return 0
end

redis.call("HDEL", KEYS[1], "paused")
local merged = 0
if redis.call("EXISTS", KEYS[5]) == 1 then
  if redis.call("EXISTS", KEYS[4]) == 0 then
    merged = redis.call("LLEN", KEYS[5])
    redis.call("RENAME", KEYS[5], KEYS[4])
  else
    while true do
      local chunk = redis.call("LRANGE", KEYS[5], 0, CHUNK - 1)
      if #chunk == 0 then
        break
      end
      redis.call("RPUSH", KEYS[4], unpack(chunk))
      redis.call("LTRIM", KEYS[5], #chunk, -1)
      merged = merged + #chunk
    end
  end
end
if redis.call("LLEN", KEYS[4]) + redis.call("ZCARD", KEYS[6]) > 0 then
  redis.call("ZADD", KEYS[2], 0, "0")
else
  local first = redis.call("ZRANGE", KEYS[7], 0, 0, "WITHSCORES")
  if first[2] then
    redis.call("ZADD", KEYS[2], tonumber(first[2]) / 4096, "1")
  end
end
redis.call("XADD", KEYS[3], "*", "event", "resumed")
return merged
