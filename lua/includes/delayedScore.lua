--[[ delayedScore(delayedKey, now, delay) -> score, dueMs
  A delayed job due at ms D gets a score in [D*4096, (D+1)*4096-1]: the first one due in that
  ms gets D*4096, each later one the highest score already used in that ms plus one (capped at
  the top of the range), so jobs due in the same ms keep their order. D = now + delay, or now
  when delay <= 0. ]]
local function delayedScore(delayedKey, now, delay)
  local due = tonumber(now)
  if delay > 0 then
    due = due + delay
  end
  local floor = due * 4096
  local ceiling = (due + 1) * 4096 - 1
  local highest = redis.call("ZREVRANGEBYSCORE", delayedKey, ceiling, floor, "WITHSCORES", "LIMIT", 0, 1)
  local used = tonumber(highest[2])
  if used == nil then
    return floor, due
  end
  if used >= ceiling then
    return ceiling, due
  end
  return used + 1, due
end

--[[ nextDelayedDue(delayedKey) -> the due time (ms, maybe fractional) of the earliest
  delayed job, or nil. markDelayed(markerKey, delayedKey) writes it as the delay marker "1". ]]
local function nextDelayedDue(delayedKey)
  local first = redis.call("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  local score = tonumber(first[2])
  if score == nil then
    return nil
  end
  return score / 4096
end

local function markDelayed(markerKey, delayedKey)
  local due = nextDelayedDue(delayedKey)
  if due ~= nil then
    redis.call("ZADD", markerKey, due, "1")
  end
end
