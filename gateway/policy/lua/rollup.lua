-- Adds to the fields of one rollup hash (the org-wide day rollup) and keeps it 400 days: one
-- call per batch of settlements instead of one HINCRBY per field.
-- KEYS[1]: the hash. ARGV[1]: its time to live in seconds; then field, amount pairs.
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
