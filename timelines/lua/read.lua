-- After list.lua: calls parse, below, bodies, token.
-- KEYS: timeline, its token. ARGV: before, limit.
-- {1, floor, ids, bodies} when cached; {0, token} when it must be rebuilt.
local tail = redis.call('LINDEX', KEYS[1], -1)
if not tail then return {0, token(KEYS[2])} end
local floor = parse(tail)
local ids = below(KEYS[1], ARGV[1], tonumber(ARGV[2]), floor).ids
return {1, tonumber(floor), ids, bodies(KEYS[1], ids)}
