-- Helpers prepended to every tokencost script (see tokencost/stores/redis.py).
-- Money and token counts travel as decimal text and are changed only with HINCRBY: Lua numbers are doubles,
-- exact only below 2^53 (about $9,007 in pico-dollars). Sums that a check compares are added as text.

-- Add two non-negative integers given as decimal text.
local function add(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then d = d + a:byte(i) - 48; i = i - 1 end
    if j > 0 then d = d + b:byte(j) - 48; j = j - 1 end
    if d >= 10 then carry = 1; d = d - 10 else carry = 0 end
    out[#out + 1] = string.char(d + 48)
  end
  local s = string.reverse(table.concat(out)):gsub('^0+', '')
  if s == '' then return '0' end
  return s
end

-- Compare two non-negative integers given as decimal text without leading zeros: -1, 0 or 1.
local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

-- A stored amount as non-negative decimal text (a missing field is 0).
local function amount(value)
  if not value or value == '' or value:sub(1, 1) == '-' then return '0' end
  return value
end

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Drop one reservation: give back what it held on each of its counters.
local function drop_reservation(res_key, exp_key, held_key, id)
  local raw = redis.call('HGET', res_key, id)
  if not raw then return end
  local r = cjson.decode(raw)
  redis.call('HDEL', res_key, id)
  redis.call('ZREM', exp_key, id)
  for _, key in ipairs(r.k) do
    if r.u ~= '0' and redis.call('HINCRBY', held_key, 'u:' .. key, '-' .. r.u) == 0 then
      redis.call('HDEL', held_key, 'u:' .. key)
    end
    if r.t ~= '0' and redis.call('HINCRBY', held_key, 't:' .. key, '-' .. r.t) == 0 then
      redis.call('HDEL', held_key, 't:' .. key)
    end
  end
end

-- Drop the reservations whose time ran out (memory's rule: expired when expiry < now).
local function purge(res_key, exp_key, held_key, t)
  local expired = redis.call('ZRANGEBYSCORE', exp_key, '-inf', '(' .. string.format('%.6f', t))
  for _, id in ipairs(expired) do drop_reservation(res_key, exp_key, held_key, id) end
end
