-- After list.lua: calls parse, rewrite.
-- KEYS: timeline, token. ARGV: author, the author's tweet ids to take out. The author is no
-- longer pulled either.
redis.call('DEL', KEYS[2])
local tail = redis.call('LINDEX', KEYS[1], -1)
if not tail then return 0 end
local gone = {}
for i = 2, #ARGV do gone[ARGV[i]] = true end
local kept = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -2)) do
    if not gone[id] then kept[#kept + 1] = id end
end
local floor, pulled = parse(tail)
pulled = string.gsub(',' .. pulled .. ',', ',' .. ARGV[1] .. ',', ',')
rewrite(KEYS[1], kept, floor, string.sub(pulled, 2, -2))
return 1
