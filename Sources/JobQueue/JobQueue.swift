import FoundationEssentials
import Logging
import NIOCore
import RESP
import RedisClient

/// The worker's side of the Redis job queue: claim, report statuses, finish exactly once, and recover the jobs of
/// dead workers. See docs/wire-contract.md for the keys and docs/reliability.md for the guarantees.
public actor JobQueue: JobQueueBackend {
    public nonisolated let configuration: QueueConfiguration
    let client: RedisClient
    let parser: JobParser
    let logger: Logger
    /// When the reaper last looked for unregistered processing lists (nil: never, so the first pass does).
    var lastOrphanScan: ContinuousClock.Instant?
    /// Published with each heartbeat once set (``describe(_:)``).
    var workerInfo: WorkerInfo?

    public init(client: RedisClient, configuration: QueueConfiguration = QueueConfiguration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.parser = JobParser(maximumPayloadBytes: configuration.maximumPayloadBytes, languages: configuration.languages)
        var logger = logger
        logger[metadataKey: "worker_id"] = "\(configuration.workerID)"
        self.logger = logger
    }

    /// A queue on its own Redis client, connected lazily to `redisURL`.
    ///
    /// - Parameters:
    ///   - clientName: shown by `CLIENT LIST` (`codebench-worker:<worker id>`).
    ///   - reconnectAttempts, commandTimeout: how soon a call fails while Redis is away; the worker keeps both low
    ///     and retries with its own backoff, so a status never waits long for a server that is not there.
    /// - Throws: ``JobQueueError/Code/invalidRedisURL`` naming what is wrong with the URL.
    public init(
        redisURL: String, clientName: String, reconnectAttempts: Int = 2, commandTimeout: Duration = .seconds(5),
        configuration: QueueConfiguration, logger: Logger
    ) throws(JobQueueError) {
        var redis: RedisClientConfiguration
        do {
            redis = try RedisClientConfiguration(url: redisURL)
        } catch {
            throw JobQueueError(.invalidRedisURL, "\(error)")
        }
        redis.reconnect.maxAttempts = reconnectAttempts
        redis.timeouts.command = commandTimeout
        redis.clientName = clientName
        self.init(client: RedisClient(configuration: redis, logger: logger), configuration: configuration, logger: logger)
    }

    /// Closes the queue's Redis connections; calls after this fail.
    public nonisolated func close() {
        client.close()
    }

    var processingList: String { configuration.processingList(for: configuration.workerID) }

    // MARK: Claim

    /// Moves the next job from the intake to this worker's processing list and validates it.
    ///
    /// Jobs that already have a terminal status (finished by a worker that was wrongly declared dead) are dropped
    /// here and never returned. Invalid payloads *are* returned (with `job` a failure) so the caller reports them
    /// with ``rejectInvalid(_:_:)``. Returns nil when nothing arrived within `timeout`.
    public func claim(timeout: Duration) async throws -> ClaimedJob? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        // Blocking longer than half the heartbeat TTL could let the reaper take us for dead while we wait.
        let maximumBlock = configuration.heartbeatTTL / 2
        while true {
            try await heartbeat()
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { return nil }
            guard let payload = try await nextPayload(timeout: min(remaining, maximumBlock)) else { continue }
            let job = refuseReservedID(parser.parse(payload), payload: payload)
            let id: String? = switch job {
            case .success(let request): request.id
            case .failure(let invalid): invalid.id
            }
            let delivery = try await checkClaim(payload: payload, job: job, id: id)
            var logger = self.logger
            logger[metadataKey: "job_id"] = "\(id ?? "-")"
            switch delivery {
            case 0:
                logger.info("dropped a redelivered job that already has its terminal status")
                continue
            case -1:
                logger.warning("refused a job whose id is in flight on another delivery; reported on the invalid list")
                continue
            case -2:
                logger.warning("refused a job whose status list exists and is not ours; reported on the invalid list")
                continue
            default:
                break
            }
            logger.debug("claimed job", metadata: ["delivery": "\(delivery)"])
            return ClaimedJob(payload: payload, job: job, deliveries: delivery, claimedAt: clock.now)
        }
    }

    /// With the empty default status prefix, an id like "jobs" would push statuses onto the queue's own keys.
    /// Such ids are treated as unreadable, so the payload goes to the invalid list.
    private func refuseReservedID(_ job: Result<JobRequest, InvalidJob>, payload: [UInt8]) -> Result<JobRequest, InvalidJob> {
        let id: String? = switch job {
        case .success(let request): request.id
        case .failure(let invalid): invalid.id
        }
        guard let id else { return job }
        let key = configuration.statusList(for: id)
        let ownKeys = configuration.intakeLists + [configuration.invalidList, configuration.deadLetterList]
        guard ownKeys.contains(key) || key.hasPrefix(configuration.namespace + ":") else { return job }
        return .failure(
            JobParser.Context(payload: payload).invalid(
                .invalidID, "invalid job: field 'id' makes the status list '\(key)' collide with the queue's own keys"))
    }

    /// Runs ``QueueScripts/checkClaim`` with the id read here, and the invalid-list entries it may need.
    /// Returns the delivery number, or 0 (already finished), -1 (id in flight elsewhere), -2 (status list not ours).
    private func checkClaim(payload: [UInt8], job: Result<JobRequest, InvalidJob>, id: String?) async throws -> Int {
        let context = JobParser.Context(payload: payload)
        let duplicate = invalidEntry(context.invalid(
            .duplicateIDInFlight,
            "invalid job: a job with id '\(id ?? "")' is already in flight; one id runs one job at a time"))
        let notOurs = invalidEntry(context.invalid(
            .statusListNotOurs,
            "invalid job: status list '\(configuration.statusList(for: id ?? ""))' already exists and was not created by "
                + "this queue; set status-key-prefix when sharing Redis"))
        let heartbeat = configuration.heartbeatKeyParts
        let keys = [
            id.map(configuration.terminalMarker(for:)) ?? "", processingList, configuration.deliveriesHash,
            configuration.claimedIDsHash, id.map(configuration.inFlightKey(for:)) ?? "",
            id.map(configuration.ownedMarker(for:)) ?? "", id.map(configuration.statusList(for:)) ?? "",
            configuration.invalidList,
        ]
        return try await integer(
            script: QueueScripts.checkClaim, keys: keys,
            arguments: [
                payload, id ?? "", configuration.workerID, configuration.statusTTLSeconds, heartbeat.prefix,
                heartbeat.suffix, duplicate.serialized, notOurs.serialized, configuration.invalidListMaxLength,
            ])
    }

    func blockingMove(from intake: String, timeout: Duration) async throws -> [UInt8]? {
        // BLMOVE takes seconds as a decimal; 0 would mean forever.
        let milliseconds = max(10, QueueConfiguration.milliseconds(timeout))
        let seconds = "\(milliseconds / 1000).\(String(milliseconds % 1000).leftPadded(to: 3))"
        let reply = try await blockingCommand("BLMOVE", intake, processingList, "LEFT", "RIGHT", seconds, as: ByteBuffer?.self)
        return reply.map { Array($0.readableBytesView) }
    }

    // MARK: Statuses

    /// Pushes `received` or `running` on the job's status list (with EXPIRE and PUBLISH).
    ///
    /// Does nothing once the job has its terminal status, and for payloads without a readable id.
    /// Returns whether it pushed.
    @discardableResult
    public func publish(_ status: JobStatus, for claimed: ClaimedJob) async throws -> Bool {
        guard !status.isTerminal else {
            throw JobQueueError(.terminalStatus, "'\(status.rawValue)' is terminal: use finish(_:outcome:)")
        }
        guard let id = claimed.id else { return false }
        let event = JSONValue.object(eventFields(id: id, status: status, attempt: claimed.deliveries, at: Self.unixMilliseconds()))
        let key = configuration.statusList(for: id)
        let pushed = try await integer(
            script: QueueScripts.publishStatus,
            keys: [key, configuration.terminalMarker(for: id)],
            arguments: [configuration.statusTTLSeconds, configuration.eventsChannel(for: id), event.serialized, status.rawValue]
        )
        if pushed < 0 {
            logger.warning("status key is not a list; status not pushed", metadata: ["job_id": "\(id)", "key": "\(key)"])
        }
        return pushed == 1
    }

    /// Publishes the job's one terminal status and removes it from the processing list, atomically.
    ///
    /// Returns false (and publishes nothing) when a terminal status was already published for this id;
    /// the job leaves the processing list either way.
    @discardableResult
    public func finish(_ claimed: ClaimedJob, outcome: JobOutcome) async throws -> Bool {
        guard let id = claimed.id else {
            throw JobQueueError(.noJobID, "a payload without a readable id has no status list: use rejectInvalid")
        }
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(id)"
        let now = Self.unixMilliseconds()
        var record: JobResultRecord
        var elements: [any RESPBulkStringEncodable]
        var event = eventFields(id: id, status: outcome.status, attempt: claimed.deliveries, at: now)
        switch outcome {
        case .done(let stdout, let stderr, let result):
            record = result
            elements = ["done", stdout, stderr]
            event["verdict"] = record.verdict.map(JSONValue.string)
            event["exit_code"] = record.exitCode.map { .int(Int($0)) }
        case .failed(let reason, let result):
            record = result ?? JobResultRecord()
            record.message = record.message ?? reason
            elements = ["failed", reason]
            event["reason"] = .string(reason)
            // A subscriber tells a cancelled job (or a limit) from other failures without reading the list.
            event["verdict"] = record.verdict.map(JSONValue.string)
        }
        record.id = id
        record.status = outcome.status.rawValue
        record.workerID = configuration.workerID
        record.attempt = claimed.deliveries
        record.finishedAtMilliseconds = now
        elements.append(record.json())

        let arguments: [any RESPBulkStringEncodable] = [
            configuration.statusTTLSeconds, configuration.eventsChannel(for: id), JSONValue.object(event).serialized,
            claimed.payload, configuration.workerID,
        ]
        let key = configuration.statusList(for: id)
        let result = try await integer(
            script: QueueScripts.finish,
            keys: [
                key, configuration.terminalMarker(for: id), processingList, configuration.deliveriesHash,
                configuration.claimedIDsHash, configuration.inFlightKey(for: id), configuration.ownedMarker(for: id),
                configuration.cancelMark(for: id),
            ],
            arguments: arguments + elements
        )
        if result < 0 {
            // Nobody can read a status from that key: end the job on the invalid list, where operators look.
            logger.error("status key is not a list; job moved to the invalid list", metadata: ["key": "\(key)"])
            let invalid = JobParser.Context(payload: claimed.payload).invalid(
                .invalidID, "status key '\(key)' holds another type than a list; outcome was '\(outcome.status.rawValue)'")
            try await rejectInvalid(claimed, invalid)
            return false
        }
        let published = result == 1
        if published {
            logger.info("published terminal status", metadata: ["status": "\(outcome.status.rawValue)"])
        } else {
            logger.notice("terminal status already published by another delivery; nothing pushed")
        }
        return published
    }

    /// Reports a payload that is not a valid job: `failed` + reason on its own list when its id could be read,
    /// otherwise a JSON entry on the invalid list. Removes it from the processing list either way.
    @discardableResult
    public func rejectInvalid(_ claimed: ClaimedJob, _ invalid: InvalidJob) async throws -> Bool {
        if invalid.id != nil {
            return try await finish(claimed, outcome: .failed(reason: invalid.reason, result: nil))
        }
        let entry = invalidEntry(invalid)
        logger.warning("refused a payload without a readable id", metadata: ["reason": "\(invalid.reason)"])
        return try await integer(
            script: QueueScripts.rejectInvalid,
            keys: [configuration.invalidList, processingList, configuration.deliveriesHash, configuration.claimedIDsHash],
            arguments: [claimed.payload, entry.serialized, configuration.invalidListMaxLength]
        ) == 1
    }

    /// Puts a claimed job back at the head of the intake (for a graceful drain). Returns false when the job was no
    /// longer in this worker's processing list (the reaper took it).
    @discardableResult
    public func requeue(_ claimed: ClaimedJob) async throws -> Bool {
        try await integer(
            script: QueueScripts.requeue, keys: [processingList, configuration.intakeList, configuration.claimedIDsHash],
            arguments: [claimed.payload, configuration.workerID, configuration.inFlightPrefix]
        ) == 1
    }

    /// Returns to the intake head the entries of this worker's processing list that are not in `held` (the payloads
    /// of the jobs this worker is running or still reporting).
    ///
    /// They appear when the connection dies after BLMOVE moved a job but before the claim's reply arrived: the job
    /// is safe in our processing list, but nobody runs it, and while this worker lives the reaper will not touch
    /// it. Call it after Redis comes back, once results waiting to be published are out. Returns how many went back.
    @discardableResult
    public func requeueOrphans(holding held: [[UInt8]]) async throws -> Int {
        let returned = try await integer(
            script: QueueScripts.requeueOrphans, keys: [processingList, configuration.intakeList, configuration.claimedIDsHash],
            arguments: ["", configuration.workerID, configuration.inFlightPrefix] + held)
        if returned > 0 {
            logger.warning("returned jobs orphaned by a lost claim reply to the intake", metadata: ["count": "\(returned)"])
        }
        return returned
    }

    // MARK: Helpers

    /// What the invalid list records of a refused payload.
    func invalidEntry(_ invalid: InvalidJob) -> JSONValue {
        .object([
            "code": .string(invalid.code.rawValue),
            "reason": .string(invalid.reason),
            "payload": .string(invalid.rawPrefix),
            "payload_bytes": .int(invalid.payloadBytes),
            "truncated": .bool(invalid.payloadBytes > JobParser.rawPrefixBytes),
            "worker_id": .string(configuration.workerID),
            "received_at_ms": .int(Self.unixMilliseconds()),
        ])
    }

    /// The PUBLISHed event (docs/wire-contract.md, "Events channel").
    func eventFields(id: String, status: JobStatus, attempt: Int, at now: Int) -> [String: JSONValue] {
        [
            "id": .string(id), "status": .string(status.rawValue), "worker_id": .string(configuration.workerID),
            "attempt": .int(attempt), "at_ms": .int(now),
        ]
    }

    static func unixMilliseconds() -> Int {
        Int(Date().timeIntervalSince1970 * 1000)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
