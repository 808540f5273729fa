-- After list.lua: calls parse, marker.
-- KEYS: pairs of (timeline, token). ARGV: a celebrity its owners now read at read time.
for k = 1, #KEYS, 2 do
    redis.call('DEL', KEYS[k + 1])
    local tail = redis.call('LINDEX', KEYS[k], -1)
    if tail then
        local floor, pulled = parse(tail)
        if not string.find(',' .. pulled .. ',', ',' .. ARGV[1] .. ',', 1, true) then
            if pulled ~= '' then pulled = pulled .. ',' end
            redis.call('LSET', KEYS[k], -1, marker(floor, pulled .. ARGV[1]))
        end
    end
end
return 1
