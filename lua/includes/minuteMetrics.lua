--[[ countFinished(metricsKey, maxPoints, now): per-minute throughput, as BullMQ 6.7's
  moveToFinished keeps it in <base>metrics:<completed|failed> (hash count / prevTS /
  prevCount) and <that key>:data (list, newest minute at the head).
  The hash "count" goes up by one; the first call only records prevTS = now, prevCount = 0.
  Later, once the minute of now differs from the minute of prevTS (n minutes later, n capped
  at maxPoints), the jobs finished since prevTS (count before this call - prevCount) are
  pushed, then n - 1 zeros for the idle minutes on top of them; the list keeps maxPoints
  entries and prevCount / prevTS move to now. ]]
local function countFinished(metricsKey, maxPoints, now)
  local before = redis.call("HINCRBY", metricsKey, "count", 1) - 1
  local since = redis.call("HGET", metricsKey, "prevTS")
  if not since then
    redis.call("HSET", metricsKey, "prevTS", now, "prevCount", 0)
    return
  end
  local minutes = math.floor(now / 60000) - math.floor(tonumber(since) / 60000)
  if minutes > maxPoints then
    minutes = maxPoints
  end
  if minutes <= 0 then
    return
  end
  local dataKey = metricsKey .. ":data"
  local finished = before - tonumber(redis.call("HGET", metricsKey, "prevCount") or 0)
  redis.call("LPUSH", dataKey, finished)
  local idle = minutes - 1
  while idle > 0 do
    local chunk = math.min(idle, 5000)
    local zeros = {}
    for i = 1, chunk do
      zeros[i] = 0
    end
    redis.call("LPUSH", dataKey, unpack(zeros))
    idle = idle - chunk
  end
  redis.call("LTRIM", dataKey, 0, maxPoints - 1)
  redis.call("HSET", metricsKey, "prevCount", before, "prevTS", now)
end
