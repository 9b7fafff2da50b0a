-- Read counters after dropping expired reservations.
-- KEYS: counters, held, reservations, expiries; ARGV: counter keys
-- Returns units, tokens and held units of each key, as decimal text.
local counters, held = KEYS[1], KEYS[2]
purge(KEYS[3], KEYS[4], held, now())
local out = {}
for _, key in ipairs(ARGV) do
  out[#out + 1] = amount(redis.call('HGET', counters, 'u:' .. key))
  out[#out + 1] = amount(redis.call('HGET', counters, 't:' .. key))
  out[#out + 1] = amount(redis.call('HGET', held, 'u:' .. key))
end
return out
