-- Drop an open reservation.
-- KEYS: held, reservations, expiries; ARGV: id
drop_reservation(KEYS[2], KEYS[3], KEYS[1], ARGV[1])
return 0
