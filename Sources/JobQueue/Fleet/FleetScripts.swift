import RedisClient

/// The scripts behind `status` and `requeue-dead`. Like the queue's own (``QueueScripts``), they find a payload's id
/// through what the worker recorded (`<ns>:ids`, `<ns>:dead-records`), never by decoding the payload in Lua.
enum FleetScripts {
    /// The jobs of one processing list, first `ARGV[2]` entries: for each, the id its worker recorded at claim ("" when
    /// unreadable or not yet recorded) and its claim time from the owned marker ("" when unknown).
    /// KEYS: processing list, ids hash. ARGV: owned marker prefix, max entries.
    static let processingJobs = RedisScript("""
        local out = {}
        for _, payload in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
          local id = redis.call('HGET', KEYS[2], redis.sha1hex(payload)) or ''
          local since = ''
          if id ~= '' then since = redis.call('GET', ARGV[1] .. id) or '' end
          table.insert(out, id)
          table.insert(out, since)
        end
        return out
        """)

    /// The newest `ARGV[1]` dead-lettered payloads, oldest first: for each, its record (JSON written by the reaper) and,
    /// only when it has none (dead-lettered before records existed), the payload itself so the caller can read its id.
    /// KEYS: dead-letter list, dead-letter records hash. ARGV: count.
    static let deadLetters = RedisScript("""
        local out = {}
        for _, payload in ipairs(redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)) do
          local record = redis.call('HGET', KEYS[2], redis.sha1hex(payload))
          if record then
            table.insert(out, record)
            table.insert(out, '')
          else
            table.insert(out, '')
            table.insert(out, payload)
          end
        end
        return out
        """)

    /// Puts dead-lettered payloads back at the tail of the intake, as a fresh submission (docs/reliability.md,
    /// "Requeueing dead-lettered jobs"): each one still on the dead-letter list leaves it and gets its delivery counter,
    /// claim record and dead-letter record reset; for its id, the terminal marker and owned marker are deleted and its
    /// status list (which ends with `failed` + `abandoned after N attempts`) is deleted when it is a list, so the retry's
    /// statuses start a list of their own with one terminal status. One script: a payload is moved once or not at all.
    /// KEYS: dead-letter list, intake, deliveries hash, ids hash, dead-letter records hash.
    /// ARGV: terminal marker prefix, owned marker prefix, status list prefix, then payload, id ("" when unreadable)...
    /// Returns, per payload, 1 when moved, 0 when it was no longer on the dead-letter list.
    static let requeueDead = RedisScript("""
        local moved = {}
        for i = 4, #ARGV, 2 do
          local payload, id = ARGV[i], ARGV[i + 1]
          if redis.call('LREM', KEYS[1], 1, payload) == 1 then
            local field = redis.sha1hex(payload)
            redis.call('HDEL', KEYS[3], field)
            redis.call('HDEL', KEYS[4], field)
            redis.call('HDEL', KEYS[5], field)
            if id ~= '' then
              redis.call('DEL', ARGV[1] .. id, ARGV[2] .. id)
              if redis.call('TYPE', ARGV[3] .. id)['ok'] == 'list' then redis.call('DEL', ARGV[3] .. id) end
            end
            redis.call('RPUSH', KEYS[2], payload)
            table.insert(moved, 1)
          else
            table.insert(moved, 0)
          end
        end
        return moved
        """)
}
