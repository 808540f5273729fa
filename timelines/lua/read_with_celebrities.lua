-- The hybrid's read (approach3_hybrid.py), after list.lua: calls parse, below, newest,
-- bodies, sibling, token.
-- KEYS: timeline, its token. ARGV: before, limit. {1, floor, ids, bodies} when every list is
-- cached; {0, token} when the timeline must be rebuilt; {2, author, token, ...} for the
-- celebrities' recent lists that must be. Each list is complete above its own floor, so the
-- merge is complete above the highest of them.
local tail = redis.call('LINDEX', KEYS[1], -1)
if not tail then return {0, token(KEYS[2])} end
local floor, pulled = parse(tail)
local before, limit = ARGV[1], tonumber(ARGV[2])
floor = tonumber(floor)
local own = below(KEYS[1], before, limit, floor)
-- A celebrity's tweet older than the owner's own `limit`-th cannot make the page: each
-- recent list is read only down to there, a few entries at a time.
local cutoff = floor
if #own.nums == limit then cutoff = own.nums[limit] end
local lists, missing = {own}, {}
for author in string.gmatch(pulled, '%d+') do
    local recent = sibling(KEYS[1], 'recent', author)
    local recent_tail = redis.call('LINDEX', recent, -1)
    if recent_tail then
        local recent_floor = tonumber((parse(recent_tail)))
        floor = math.max(floor, recent_floor)
        lists[#lists + 1] = below(recent, before, limit, math.max(recent_floor, cutoff), 4)
    else
        missing[#missing + 1] = author
        missing[#missing + 1] = token('token:' .. recent)
    end
end
if #missing > 0 then return {2, missing} end
local ids = newest(lists, floor, limit)
return {1, floor, ids, bodies(KEYS[1], ids)}
