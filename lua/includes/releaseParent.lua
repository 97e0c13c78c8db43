--[[ releaseParentIfReady(parentKey, now)
  A parent in its queue's waiting-children set whose ":dependencies" set is empty is put
  where it can run: its own "delay" > 0 -> that queue's delayed set due at now + delay
  (plain due*4096 score, "delayed" event, delay marker); priority 0 -> the tail of wait
  (it runs next); priority > 0 -> prioritized. Then "waiting" with prev "waiting-children"
  on the parent's own stream. Does nothing for a parent that is missing, not waiting for
  children, or still has dependencies. ]]
-- @include "moveParentOut"
local function releaseParentIfReady(parentKey, now)
  if redis.call("SCARD", parentKey .. ":dependencies") > 0 then
    return
  end
  local cut = string.find(parentKey, ":[^:]*$")
  if not cut then
    return
  end
  local base = string.sub(parentKey, 1, cut)
  local parentId = string.sub(parentKey, cut + 1)
  if redis.call("ZREM", base .. "waiting-children", parentId) == 0 then
    return
  end
  moveParentOut(string.sub(base, 1, -2), parentKey, parentId, now)
end
