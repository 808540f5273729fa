-- The hybrid's read (approach3_hybrid.py), after list.lua: calls parse, below, newest_first,
-- newest, bodies, sibling, token.
-- KEYS: timeline, its token. ARGV: before, limit. {1, floor, ids, bodies} when every list is
-- cached; {0, token} when the timeline must be rebuilt; {2, author, token, ...} for the
-- celebrities' recent lists that must be. Each list is complete above its own floor, so the
-- merge is complete above the highest of them.

-- A pulled celebrity costs one LRANGE of the head of its recent list, WINDOW entries (more
-- only when they all make the page): its ids below `before` and above `cutoff`, at most
-- `limit`, go into the pool (`nums`, `id_of`). Its floor is the tail marker, read only
-- when the head runs into it: the list's floor, or false when the read stopped before it,
-- at an id at or below the cutoff or at `limit` ids, where every id is above the floor
-- anyway (so the floor changes no id of the page, and the page is full or ends at the
-- cutoff's floor: the floor returned is exact whenever the page is short, the one time the
-- app reads it); nil when the list is not cached.
local WINDOW = 4
local function pull(key, before, limit, cutoff, nums, id_of)
    local start, window, taken = 0, WINDOW, 0
    while true do
        local chunk = redis.call('LRANGE', key, start, start + window - 1)
        if #chunk == 0 then
            if start == 0 then return nil end
            return false
        end
        for _, id in ipairs(chunk) do
            local n = tonumber(id)
            if not n then return tonumber((parse(id))) end
            if n <= cutoff then return false end
            if n < before then
                if not id_of[n] then nums[#nums + 1], id_of[n] = n, id end
                taken = taken + 1
                if taken == limit then return false end
            end
        end
        start, window = start + window, window * 4
    end
end

local tail = redis.call('LINDEX', KEYS[1], -1)
if not tail then return {0, token(KEYS[2])} end
local floor, pulled = parse(tail)
local before, limit = ARGV[1], tonumber(ARGV[2])
floor = tonumber(floor)
local own = below(KEYS[1], before, limit, floor)
-- A celebrity's tweet older than the owner's own `limit`-th cannot make the page.
local cutoff = floor
if #own.nums == limit then cutoff = own.nums[limit] end
local nums, id_of, missing, recent = {}, {}, {}, sibling(KEYS[1], 'recent', '')
before = tonumber(before)
for author in string.gmatch(pulled, '%d+') do
    local recent_floor = pull(recent .. author, before, limit, cutoff, nums, id_of)
    if recent_floor then
        floor = math.max(floor, recent_floor)
    elseif recent_floor == nil then
        missing[#missing + 1] = author
        missing[#missing + 1] = token('token:' .. recent .. author)
    end
end
if #missing > 0 then return {2, missing} end
local ids = newest(own, newest_first(nums, id_of), floor, limit)
return {1, floor, ids, bodies(KEYS[1], ids)}
