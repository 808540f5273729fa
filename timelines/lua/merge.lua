-- After list.lua: calls parse, numbered, newest, rewrite, trim.
-- KEYS: pairs of (timeline, token). ARGV: length, keep, source floor, tweet ids newest
-- first. The ids are complete above the source floor (an author's newest N, say), so the
-- merged timeline can only claim completeness above the higher of the two floors. Whom the
-- timeline pulls stays as it is: a pull that is no longer needed only costs a read, while
-- one dropped too early (a crossing racing this merge) would lose a celebrity's tweets.
local length, keep, source_floor = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local incoming = {}
for i = 4, #ARGV do incoming[#incoming + 1] = ARGV[i] end
local sources = numbered(incoming)
for k = 1, #KEYS, 2 do
    local key = KEYS[k]
    redis.call('DEL', KEYS[k + 1])
    local tail = redis.call('LINDEX', key, -1)
    if tail then
        local floor, pulled = parse(tail)
        if tonumber(source_floor) > tonumber(floor) then floor = source_floor end
        local ids = redis.call('LRANGE', key, 0, -2)
        local merged = newest(numbered(ids), sources, tonumber(floor), #ids + #incoming)
        rewrite(key, merged, floor, pulled)
        trim(key, length, keep)
    end
end
return 1
