-- Alone (no list.lua). KEYS: list, token. Drops a list whose sources changed while Redis
-- was away.
redis.call('DEL', KEYS[2])
return redis.call('DEL', KEYS[1])
