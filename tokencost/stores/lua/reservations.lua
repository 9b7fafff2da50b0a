-- The open reservations, after dropping expired ones; with ARGV[2] (seconds), drop those created longer ago first.
-- KEYS: held, reservations, expiries; ARGV: the time (or '' for the server's), older than (or '')
-- Returns {id, reservation JSON, ...} of those open (the number dropped, when ARGV[2] is given).
local held, res, exp = KEYS[1], KEYS[2], KEYS[3]
local t = clock(ARGV[1])
purge(res, exp, held, t)
local all = redis.call('HGETALL', res)
if ARGV[2] and ARGV[2] ~= '' then
  local cutoff = t - tonumber(ARGV[2])
  local dropped = 0
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    if (tonumber(r.c) or 0) < cutoff then
      drop_reservation(res, exp, held, all[i])
      dropped = dropped + 1
    end
  end
  return dropped
end
return all
