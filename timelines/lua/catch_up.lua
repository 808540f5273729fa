-- After list.lua: calls push_into.
-- KEYS: a list just rebuilt, its token. ARGV: the token it was rebuilt with, length, keep, the
-- ids committed since the rebuild's snapshot, read from SQLite as the sources are now. A
-- follow change since (the token is gone) may make those ids wrong: the list goes instead.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.call('DEL', KEYS[1]) end
local length, keep = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do push_into(KEYS[1], ARGV[i], length, keep) end
return 0
