-- After list.lua: calls push_into.
-- KEYS: lists (followers' timelines, or an author's recent tweets). ARGV: id, length, keep.
-- Returns {lists written, µs the call took}: Redis's own clock, for sizing the next call.
-- Only lists already cached take the id (Haplo's RPUSHX); an id already there is not
-- pushed twice; one that arrives late (fanouts run side by side) goes to its place.
local began = redis.call('TIME')
local id, length, keep, written = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), 0
for _, key in ipairs(KEYS) do
    written = written + push_into(key, id, length, keep)
end
local ended = redis.call('TIME')
return {written, (ended[1] - began[1]) * 1000000 + ended[2] - began[2]}
