/// The Lua scripts behind every multi-key step of the queue. Each runs atomically in Redis, which is what makes
/// "exactly one terminal status" and "no job lost" hold across workers (see docs/reliability.md).
///
/// Key names that depend on a job id read inside the script (the reaper's) are built in Lua from prefixes:
/// fine on a single Redis, which is what the worker supports (no Redis Cluster).
import RedisClient

enum QueueScripts {
    /// Non-terminal status push, refused once the job has a terminal status.
    /// KEYS: status list, terminal marker. ARGV: ttl seconds, channel, event JSON, status.
    static let publishStatus = RedisScript("""
        local kind = redis.call('TYPE', KEYS[1])['ok']
        if kind ~= 'none' and kind ~= 'list' then return -1 end
        if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
        redis.call('RPUSH', KEYS[1], ARGV[4])
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """)

    /// The single terminal push: sets the marker (NX) and pushes, or only forgets the job when the marker exists.
    /// Returns -1 without writing anything when the status key holds something else than a list (a script error
    /// after the marker would leave the job marked finished with nothing published).
    /// KEYS: status list, terminal marker, processing list, deliveries hash.
    /// ARGV: ttl seconds, channel, event JSON, payload, worker id, elements to push...
    static let finish = RedisScript("""
        local kind = redis.call('TYPE', KEYS[1])['ok']
        if kind ~= 'none' and kind ~= 'list' then return -1 end
        redis.call('LREM', KEYS[3], 1, ARGV[4])
        redis.call('HDEL', KEYS[4], redis.sha1hex(ARGV[4]))
        if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'EX', ARGV[1]) then return 0 end
        redis.call('RPUSH', KEYS[1], unpack(ARGV, 6))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """)

    /// Refuses a payload without a readable id. Only the worker still holding it reports it, so a payload
    /// reaped from a slow worker is reported once, by whoever holds it now.
    /// KEYS: invalid list, processing list, deliveries hash. ARGV: payload, entry JSON, max length of the invalid list.
    static let rejectInvalid = RedisScript("""
        if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
        redis.call('HDEL', KEYS[3], redis.sha1hex(ARGV[1]))
        redis.call('RPUSH', KEYS[1], ARGV[2])
        redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
        return 1
        """)

    /// Right after BLMOVE: drops a job that already has a terminal status (returns 0), else returns the delivery number.
    /// KEYS: terminal marker ("" when the id is unreadable), processing list, deliveries hash. ARGV: payload.
    static let checkClaim = RedisScript("""
        local field = redis.sha1hex(ARGV[1])
        if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
          redis.call('LREM', KEYS[2], 1, ARGV[1])
          redis.call('HDEL', KEYS[3], field)
          return 0
        end
        return (tonumber(redis.call('HGET', KEYS[3], field)) or 0) + 1
        """)

    /// Gives a claimed job back to the head of the intake (graceful drain); a no-op when it is no longer ours.
    /// KEYS: processing list, intake list. ARGV: payload.
    static let requeue = RedisScript("""
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        redis.call('LPUSH', KEYS[2], ARGV[1])
        return 1
        """)

    /// KEYS: heartbeat key, workers set. ARGV: heartbeat value, ttl ms, worker id.
    static let heartbeat = RedisScript("""
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3])
        return 1
        """)

    /// Deletes the lock only when we still own it. KEYS: lock. ARGV: owner.
    static let releaseLock = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// Returns a dead worker's jobs to the intake head (oldest first), counting deliveries; dead-letters a job at
    /// maxDeliveries with `failed` through the same marker as ``finish``; drops jobs that already have a terminal status.
    /// KEYS: workers set, dead worker's heartbeat, its processing list, intake, deliveries hash, dead-letter list.
    /// ARGV: dead worker id, max deliveries, ttl seconds, status prefix, marker prefix, events prefix, reaper id, now ms.
    /// Returns {requeued, dead-lettered, already finished}, or {-1, 0, 0} when the worker turned out alive.
    static let reap = RedisScript("""
        if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0, 0} end
        local function readID(payload)
          local ok, job = pcall(cjson.decode, payload)
          if not ok or type(job) ~= 'table' then return nil end
          local id = job['id']
          if type(id) ~= 'string' or #id == 0 or #id > 256 then return nil end
          if string.find(id, '%c') or string.find(id, '\\194[\\128-\\159]') then return nil end
          local kind = redis.call('TYPE', ARGV[4] .. id)['ok']
          if kind ~= 'none' and kind ~= 'list' then return nil end
          return id
        end
        local requeued, dead, finished = 0, 0, 0
        local maxDeliveries = tonumber(ARGV[2])
        while true do
          local payload = redis.call('RPOP', KEYS[3])
          if not payload then break end
          local field = redis.sha1hex(payload)
          local id = readID(payload)
          if id and redis.call('EXISTS', ARGV[5] .. id) == 1 then
            redis.call('HDEL', KEYS[5], field)
            finished = finished + 1
          else
            local n = redis.call('HINCRBY', KEYS[5], field, 1)
            if n >= maxDeliveries then
              redis.call('HDEL', KEYS[5], field)
              redis.call('RPUSH', KEYS[6], payload)
              dead = dead + 1
              if id and redis.call('SET', ARGV[5] .. id, ARGV[7], 'NX', 'EX', ARGV[3]) then
                local reason = 'abandoned after ' .. n .. ' attempts'
                local now = tonumber(ARGV[8])
                local record = cjson.encode({id = id, status = 'failed', message = reason, attempt = n,
                  worker_id = ARGV[7], finished_at_ms = now})
                local list = ARGV[4] .. id
                redis.call('RPUSH', list, 'failed', reason, record)
                redis.call('EXPIRE', list, ARGV[3])
                redis.call('PUBLISH', ARGV[6] .. id, cjson.encode({id = id, status = 'failed', reason = reason,
                  attempt = n, worker_id = ARGV[7], at_ms = now}))
              end
            else
              redis.call('LPUSH', KEYS[4], payload)
              requeued = requeued + 1
            end
          end
        end
        redis.call('SREM', KEYS[1], ARGV[1])
        return {requeued, dead, finished}
        """)
}
