-- The functions every other script here calls: each is run as this file followed by the
-- script (lua() in timelines/cache.py joins them), since a Redis script cannot import.
-- Ids stay strings as Redis returns them; only comparisons convert.

-- The key of `kind` and `id` in `key`'s slot: `tweet:{s3.20}:42` beside `timeline:{s3.20}:7`
-- on a cluster, `tweet:42` on one Redis (no tag). A script names no other key it is not given.
local function sibling(key, kind, id)
    return kind .. ':' .. (string.match(key, '{[^}]*}:') or '') .. id
end
local function parse(marker)
    local bar = string.find(marker, '|', 1, true)
    if bar then return string.sub(marker, 2, bar - 1), string.sub(marker, bar + 1) end
    return string.sub(marker, 2), ''
end
local function marker(floor, pulled)
    if pulled == '' then return 'f' .. floor end
    return 'f' .. floor .. '|' .. pulled
end
local function token(key)
    local current = redis.call('GET', key)
    if current then return current end
    local now = redis.call('TIME')
    current = now[1] .. '.' .. now[2]
    redis.call('SET', key, current)
    return current
end
-- Up to `limit` ids below `before` and above `floor`, newest first, from the head down:
-- {ids as stored, the same as numbers for comparing}. Read `first` entries at a time, then
-- four times as many each time more are needed.
local function below(key, before, limit, floor, first)
    local ids, nums, start, window = {}, {}, 0, first or limit + 1
    before, floor = tonumber(before), tonumber(floor)
    while true do
        local chunk = redis.call('LRANGE', key, start, start + window - 1)
        if #chunk == 0 then break end
        for _, id in ipairs(chunk) do
            local n = tonumber(id)
            if not n or n <= floor then return {ids = ids, nums = nums} end
            if n < before then
                ids[#ids + 1], nums[#nums + 1] = id, n
                if #ids == limit then return {ids = ids, nums = nums} end
            end
        end
        start, window = start + window, window * 4
    end
    return {ids = ids, nums = nums}
end
local function numbered(ids)
    local nums = {}
    for i, id in ipairs(ids) do nums[i] = tonumber(id) end
    return {ids = ids, nums = nums}
end
-- {ids, nums} of a pool of ids, `id_of` (number -> id as stored) and its numbers `nums`
-- (each once, in any order): newest first, sorted in place.
local function newest_first(nums, id_of)
    table.sort(nums)
    local ids, descending, n = {}, {}, #nums
    for j = n, 1, -1 do
        ids[n - j + 1], descending[n - j + 1] = id_of[nums[j]], nums[j]
    end
    return {ids = ids, nums = descending}
end
-- The newest `limit` ids of two such lists (each newest first), each once, above `floor`.
local function newest(first, second, floor, limit)
    local out, a, b, last = {}, 1, 1, nil
    while #out < limit do
        local x, y, best, id = first.nums[a], second.nums[b], nil, nil
        if x and (not y or x >= y) then
            best, id, a = x, first.ids[a], a + 1
        elseif y then
            best, id, b = y, second.ids[b], b + 1
        else
            break
        end
        if best <= floor then break end
        if best ~= last then out[#out + 1], last = id, best end
    end
    return out
end
local function bodies(key, ids)
    if #ids == 0 then return {} end
    local keys = {}
    for i, id in ipairs(ids) do keys[i] = sibling(key, 'tweet', id) end
    return redis.call('MGET', unpack(keys))
end
-- A list that grew past `length` is cut back to the newest `keep`: a slack at a time, so
-- the cut happens once every (length - keep) pushes, not on each. The floor rises to the
-- highest id dropped.
local function trim(key, length, keep)
    if redis.call('LLEN', key) - 1 > length then
        local cut = redis.call('LINDEX', key, keep)
        local _, pulled = parse(redis.call('LINDEX', key, -1))
        redis.call('LTRIM', key, 0, keep - 1)
        redis.call('RPUSH', key, marker(cut, pulled))
    end
end
-- Pushes one id into one cached list (Haplo's RPUSHX: never into one that is not cached):
-- in id order, never twice, only above the floor. 1 when the list took it.
local function push_into(key, id, length, keep)
    local head = redis.call('LINDEX', key, 0)
    if not head then return 0 end
    local n, size = tonumber(id), 0
    if tonumber(head) and tonumber(head) < n then
        -- The common case, a new tweet: newer than the head, so above the floor too.
        size = redis.call('LPUSH', key, id)
    else
        for _, other in ipairs(redis.call('LRANGE', key, 0, -1)) do
            local o = tonumber(other)
            if o == n then return 0 end
            if not o then  -- the tail: older than every id here, but is it above the floor?
                if n <= tonumber((parse(other))) then return 0 end
                size = redis.call('LINSERT', key, 'BEFORE', other, id)
                break
            end
            if o < n then
                size = redis.call('LINSERT', key, 'BEFORE', other, id)
                break
            end
        end
    end
    if size <= 0 then return 0 end
    if size - 1 > length then trim(key, length, keep) end
    return 1
end
local function rewrite(key, ids, floor, pulled)
    redis.call('DEL', key)
    for i = 1, #ids, 4000 do
        redis.call('RPUSH', key, unpack(ids, i, math.min(i + 3999, #ids)))
    end
    redis.call('RPUSH', key, marker(floor, pulled))
end
