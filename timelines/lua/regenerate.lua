-- After list.lua: calls rewrite.
-- KEYS: list, token. ARGV: the token read with the miss, floor, pulled, ids newest first.
-- 1 when the list exists afterwards (written now, or by a concurrent rebuild).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
rewrite(KEYS[1], ids, ARGV[2], ARGV[3])
return 1
