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
    /// The job's cancel mark goes too: the request was honoured, or came too late to matter.
    /// KEYS: status list, terminal marker, processing list, deliveries hash, ids hash, in-flight key, owned marker,
    ///   cancel mark.
    /// ARGV: ttl seconds, channel, event JSON, payload, worker id, elements to push...
    static let finish = RedisScript("""
        local kind = redis.call('TYPE', KEYS[1])['ok']
        if kind ~= 'none' and kind ~= 'list' then return -1 end
        local field = redis.sha1hex(ARGV[4])
        redis.call('LREM', KEYS[3], 1, ARGV[4])
        redis.call('HDEL', KEYS[4], field)
        redis.call('HDEL', KEYS[5], field)
        if redis.call('GET', KEYS[6]) == ARGV[5] then redis.call('DEL', KEYS[6]) end
        redis.call('DEL', KEYS[7], KEYS[8])
        if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'EX', ARGV[1]) then return 0 end
        redis.call('RPUSH', KEYS[1], unpack(ARGV, 6))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """)

    /// Refuses a payload without a readable id. Only the worker still holding it reports it, so a payload
    /// reaped from a slow worker is reported once, by whoever holds it now.
    /// KEYS: invalid list, processing list, deliveries hash, ids hash. ARGV: payload, entry JSON, max length of the invalid list.
    static let rejectInvalid = RedisScript("""
        if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
        local field = redis.sha1hex(ARGV[1])
        redis.call('HDEL', KEYS[3], field)
        redis.call('HDEL', KEYS[4], field)
        redis.call('RPUSH', KEYS[1], ARGV[2])
        redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
        return 1
        """)

    /// Right after BLMOVE, with the id the worker read (the only reading of the payload; scripts never decode it):
    /// - a job that already has its terminal status is dropped (returns 0);
    /// - a job whose id is in flight elsewhere (its in-flight key names a worker whose heartbeat lives) goes to the
    ///   invalid list untouched by its status list (returns -1);
    /// - a job whose status list exists but was never ours (no owned marker) goes to the invalid list (returns -2);
    /// - otherwise the id is recorded for the reaper (ids hash), marked in flight and owned (the owned marker holds
    ///   the claim time on Redis's clock, for `status`), and the delivery number is returned.
    /// An unreadable id (ARGV[2] == "") is recorded as such, and only the delivery number is returned.
    /// KEYS: terminal marker, processing list, deliveries hash, ids hash, in-flight key, owned marker, status list,
    ///   invalid list ("" for the four id keys when the id is unreadable).
    /// ARGV: payload, id, worker id, ttl seconds, heartbeat key prefix, heartbeat key suffix,
    ///   duplicate entry JSON, not-ours entry JSON, max length of the invalid list.
    static let checkClaim = RedisScript(redisNow + """
        local field = redis.sha1hex(ARGV[1])
        local function refuse(entry)
          redis.call('LREM', KEYS[2], 1, ARGV[1])
          redis.call('RPUSH', KEYS[8], entry)
          redis.call('LTRIM', KEYS[8], -tonumber(ARGV[9]), -1)
        end
        if ARGV[2] ~= '' then
          if redis.call('EXISTS', KEYS[1]) == 1 then
            redis.call('LREM', KEYS[2], 1, ARGV[1])
            redis.call('HDEL', KEYS[3], field)
            redis.call('HDEL', KEYS[4], field)
            return 0
          end
          local owner = redis.call('GET', KEYS[5])
          if owner and redis.call('EXISTS', ARGV[5] .. owner .. ARGV[6]) == 1 then
            refuse(ARGV[7])
            return -1
          end
          if redis.call('EXISTS', KEYS[7]) == 1 and redis.call('EXISTS', KEYS[6]) == 0 then
            refuse(ARGV[8])
            return -2
          end
          redis.call('SET', KEYS[5], ARGV[3], 'EX', ARGV[4])
          redis.call('SET', KEYS[6], nowMilliseconds(), 'EX', ARGV[4])
        end
        redis.call('HSET', KEYS[4], field, ARGV[2])
        return (tonumber(redis.call('HGET', KEYS[3], field)) or 0) + 1
        """)

    /// Lua shared by the scripts that give payloads back to the intake: forgets that the payload's id is in flight
    /// here, found through the id the worker recorded at claim (never by decoding the payload).
    /// Expects KEYS[3] = ids hash, ARGV[2] = worker id, ARGV[3] = in-flight key prefix.
    private static let releaseInFlight = """
        local function release(payload)
          local id = redis.call('HGET', KEYS[3], redis.sha1hex(payload))
          if id and id ~= '' and redis.call('GET', ARGV[3] .. id) == ARGV[2] then redis.call('DEL', ARGV[3] .. id) end
        end

        """

    /// Gives a claimed job back to the head of the intake (graceful drain); a no-op when it is no longer ours.
    /// KEYS: processing list, intake list, ids hash. ARGV: payload, worker id, in-flight key prefix.
    static let requeue = RedisScript(releaseInFlight + """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        release(ARGV[1])
        redis.call('LPUSH', KEYS[2], ARGV[1])
        return 1
        """)

    /// Gives every job of the processing list back to the intake head, oldest first (leaving the fleet).
    /// KEYS: processing list, intake list, ids hash. ARGV: unused, worker id, in-flight key prefix.
    static let requeueAll = RedisScript(releaseInFlight + """
        local returned = 0
        while true do
          local payload = redis.call('RPOP', KEYS[1])
          if not payload then break end
          release(payload)
          redis.call('LPUSH', KEYS[2], payload)
          returned = returned + 1
        end
        return returned
        """)

    /// Returns to the intake head the entries of the processing list that the worker does not hold (ARGV[4...]):
    /// copies beyond those held are orphans of a claim whose reply was lost. One script, so a job finishing
    /// meanwhile cannot be moved by mistake.
    /// KEYS: processing list, intake list, ids hash. ARGV: unused, worker id, in-flight key prefix, held payloads...
    static let requeueOrphans = RedisScript(releaseInFlight + """
        local held = {}
        for i = 4, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end
        local seen, orphans = {}, {}
        for _, payload in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
          seen[payload] = (seen[payload] or 0) + 1
          if seen[payload] > (held[payload] or 0) then table.insert(orphans, payload) end
        end
        for _, payload in ipairs(orphans) do
          redis.call('LREM', KEYS[1], 1, payload)
          release(payload)
          redis.call('LPUSH', KEYS[2], payload)
        end
        return #orphans
        """)

    /// Moves the head of the first non-empty intake list (in priority order) to the processing list, in one step
    /// as BLMOVE does for one list; returns the payload, or nil when every list is empty.
    /// KEYS: processing list, intake lists in priority order.
    static let claimFirst = RedisScript("""
        for i = 2, #KEYS do
          local payload = redis.call('LMOVE', KEYS[i], KEYS[1], 'LEFT', 'RIGHT')
          if payload then return payload end
        end
        return false
        """)

    /// Lua shared by scripts that record a time: Redis's clock in milliseconds since the epoch, as a string, so every
    /// age `status` shows is measured on one clock whatever the hosts' clocks say.
    static let redisNow = """
        local function nowMilliseconds()
          local t = redis.call('TIME')
          return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
        end

        """

    /// Marks the worker alive and registered; with ARGV[4...] (field, value pairs), also writes its info hash with
    /// the heartbeat's TTL, so a worker's description disappears with it.
    /// KEYS: heartbeat key, workers set, info hash. ARGV: heartbeat value, ttl ms, worker id, info fields and values...
    static let heartbeat = RedisScript("""
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3])
        if #ARGV > 3 then
          redis.call('HSET', KEYS[3], unpack(ARGV, 4))
          redis.call('PEXPIRE', KEYS[3], ARGV[2])
        end
        return 1
        """)

    /// Deletes the lock only when we still own it. KEYS: lock. ARGV: owner.
    static let releaseLock = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// Returns a dead worker's jobs to the intake head (oldest first), counting deliveries; dead-letters a job at
    /// maxDeliveries with `failed` through the same marker as ``finish``; drops jobs that already have a terminal status.
    /// The id of each job is the one its worker recorded at claim (ids hash); a payload never recorded (its worker died
    /// between BLMOVE and the claim check) has no id here and is requeued, or dead-lettered without a status.
    /// Each dead-lettered payload gets a record (id, reason, attempts, time on Redis's clock, dead worker) in the
    /// dead-letter records hash, for `status`.
    /// KEYS: workers set, dead worker's heartbeat, its processing list, intake, deliveries hash, dead-letter list, ids hash,
    ///   dead-letter records hash.
    /// ARGV: dead worker id, max deliveries, ttl seconds, status prefix, marker prefix, events prefix, reaper id, now ms,
    ///   in-flight key prefix.
    /// Returns {requeued, dead-lettered, already finished}, or {-1, 0, 0} when the worker turned out alive.
    static let reap = RedisScript(redisNow + """
        if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0, 0} end
        local requeued, dead, finished = 0, 0, 0
        local maxDeliveries = tonumber(ARGV[2])
        while true do
          local payload = redis.call('RPOP', KEYS[3])
          if not payload then break end
          local field = redis.sha1hex(payload)
          local id = redis.call('HGET', KEYS[7], field)
          if id == '' then id = nil end
          if id and redis.call('GET', ARGV[9] .. id) == ARGV[1] then redis.call('DEL', ARGV[9] .. id) end
          if id and redis.call('EXISTS', ARGV[5] .. id) == 1 then
            redis.call('HDEL', KEYS[5], field)
            redis.call('HDEL', KEYS[7], field)
            finished = finished + 1
          else
            local n = redis.call('HINCRBY', KEYS[5], field, 1)
            if n >= maxDeliveries then
              redis.call('HDEL', KEYS[5], field)
              redis.call('HDEL', KEYS[7], field)
              redis.call('RPUSH', KEYS[6], payload)
              dead = dead + 1
              local reason = 'abandoned after ' .. n .. ' attempts'
              redis.call('HSET', KEYS[8], field, cjson.encode({id = id, reason = reason, attempts = n,
                dead_at_ms = tonumber(nowMilliseconds()), worker_id = ARGV[1]}))
              local list = id and (ARGV[4] .. id)
              local kind = list and redis.call('TYPE', list)['ok']
              if list and (kind == 'none' or kind == 'list')
                and redis.call('SET', ARGV[5] .. id, ARGV[7], 'NX', 'EX', ARGV[3]) then
                local now = tonumber(ARGV[8])
                local record = cjson.encode({id = id, status = 'failed', message = reason, attempt = n,
                  worker_id = ARGV[7], finished_at_ms = now})
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
