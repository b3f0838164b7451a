import RESP
import RedisClient
import NIOCore

/// Which dead-lettered jobs `requeue-dead` moves.
public enum DeadLetterSelection: Sendable, Equatable {
    /// Every entry whose payload has this id.
    case id(String)
    /// The whole dead-letter list.
    case all
}

/// One job `requeue-dead` put back on the intake.
public struct RequeuedDeadLetter: Sendable, Equatable {
    /// nil for a payload whose id cannot be read (it will be refused again, onto the invalid list).
    public var id: String?
    /// The list it went to.
    public var intake: String
}

extension JobQueue {
    /// At most this many jobs of each worker are listed by ``fleetStatus(deadLetters:scanUnregistered:)``; the
    /// processing list's depth is always exact.
    public static let fleetJobsPerWorker = 100

    /// Reads the fleet from Redis: queue depths, every worker with its heartbeat, description and jobs, and the newest
    /// `deadLetters` dead-lettered jobs. Read-only, and not one atomic snapshot (a job may finish between two reads).
    ///
    /// - Parameter scanUnregistered: also SCAN for processing lists of workers no longer registered (what the reaper
    ///   recovers); a full keyspace scan, so the dashboard, which asks every few seconds, leaves it off.
    public func fleetStatus(deadLetters count: Int = 10, scanUnregistered: Bool = true) async throws -> FleetStatus {
        let now = try await redisMilliseconds()
        let registered = Set(try await command("SMEMBERS", configuration.workersSet, as: [String].self))
        var ids = registered
        if scanUnregistered { ids.formUnion(try await processingListOwners()) }
        var workers: [FleetStatus.Worker] = []
        for id in ids.sorted() {
            workers.append(try await workerStatus(id, registered: registered.contains(id)))
        }
        var queues: [FleetStatus.Queue] = []
        for list in configuration.intakeLists {
            queues.append(FleetStatus.Queue(role: .intake, name: list, depth: try await length(of: list)))
        }
        for worker in workers {
            queues.append(FleetStatus.Queue(
                role: .processing, name: configuration.processingList(for: worker.id), depth: worker.processingDepth,
                workerID: worker.id))
        }
        queues.append(FleetStatus.Queue(role: .invalid, name: configuration.invalidList, depth: try await length(of: configuration.invalidList)))
        queues.append(FleetStatus.Queue(
            role: .dead, name: configuration.deadLetterList, depth: try await length(of: configuration.deadLetterList)))
        return FleetStatus(
            generatedAtMilliseconds: now, queues: queues, workers: workers,
            deadLetters: count > 0 ? try await newestDeadLetters(count) : [])
    }

    /// Puts dead-lettered jobs back at the tail of the intake, atomically, resetting their terminal marker, status
    /// list, owned marker, delivery counter and records (docs/reliability.md, "Requeueing dead-lettered jobs").
    ///
    /// - Throws: ``JobQueueError/Code/notDeadLettered`` when `selection` names an id that no dead-lettered job has.
    /// - Returns: what was moved; empty for ``DeadLetterSelection/all`` on an empty list.
    public func requeueDeadLetters(_ selection: DeadLetterSelection) async throws -> [RequeuedDeadLetter] {
        let payloads = try await command("LRANGE", configuration.deadLetterList, 0, -1, as: [ByteBuffer].self)
            .map { Array($0.readableBytesView) }
        // The id as the worker read it: the same parser, so the same reading.
        let entries = payloads.map { (payload: $0, id: jobID(of: $0)) }
        let chosen: [(payload: [UInt8], id: String?)]
        switch selection {
        case .all:
            chosen = entries
        case .id(let id):
            chosen = entries.filter { $0.id == id }
            guard !chosen.isEmpty else {
                throw JobQueueError(
                    .notDeadLettered,
                    "no dead-lettered job has id '\(id)' (\(configuration.deadLetterList) holds \(payloads.count) job\(payloads.count == 1 ? "" : "s"))")
            }
        }
        guard !chosen.isEmpty else { return [] }
        let intake = configuration.intakeList
        let arguments: [any RESPBulkStringEncodable] =
            [configuration.markerPrefix, configuration.ownedPrefix, configuration.statusKeyPrefix]
            + chosen.flatMap { [$0.payload, $0.id ?? ""] as [any RESPBulkStringEncodable] }
        let moved = try await integers(
            script: FleetScripts.requeueDead,
            keys: [
                configuration.deadLetterList, intake, configuration.deliveriesHash, configuration.claimedIDsHash,
                configuration.deadLetterRecordsHash,
            ],
            arguments: arguments)
        let requeued = zip(chosen, moved).filter { $0.1 == 1 }.map { RequeuedDeadLetter(id: $0.0.id, intake: intake) }
        if case .id(let id) = selection, requeued.isEmpty {
            throw JobQueueError(.notDeadLettered, "the dead-lettered job with id '\(id)' left \(configuration.deadLetterList) meanwhile")
        }
        for job in requeued {
            logger.notice("requeued a dead-lettered job", metadata: ["job_id": "\(job.id ?? "-")", "intake": "\(intake)"])
        }
        return requeued
    }

    // MARK: Reading

    private func workerStatus(_ id: String, registered: Bool) async throws -> FleetStatus.Worker {
        let remaining = try await command("PTTL", configuration.heartbeatKey(for: id), as: Int.self)
        let hash = try await command("HGETALL", configuration.workerInfoKey(for: id), as: [String: String].self)
        let info = WorkerInfo(hash: hash)
        let ttl = info?.heartbeatTTLMilliseconds ?? configuration.heartbeatTTLMilliseconds
        let processing = configuration.processingList(for: id)
        let pairs = try await strings(
            script: FleetScripts.processingJobs, keys: [processing, configuration.claimedIDsHash],
            arguments: [configuration.ownedPrefix, Self.fleetJobsPerWorker])
        let jobs = stride(from: 0, to: pairs.count - 1, by: 2).map { index in
            FleetStatus.RunningJob(id: pairs[index].isEmpty ? nil : pairs[index], claimedAtMilliseconds: Int(pairs[index + 1]))
        }
        return FleetStatus.Worker(
            id: id, registered: registered,
            // PTTL is -2 without the key; the age from the remaining TTL needs no agreement between clocks.
            heartbeatAgeMilliseconds: remaining >= 0 ? max(0, ttl - remaining) : nil,
            info: info, processingDepth: try await length(of: processing), jobs: jobs)
    }

    private func newestDeadLetters(_ count: Int) async throws -> [FleetStatus.DeadLetter] {
        let pairs = try await client.evalScript(
            FleetScripts.deadLetters, keys: [configuration.deadLetterList, configuration.deadLetterRecordsHash], arguments: [count])
        let elements = try Self.decode(pairs, as: [ByteBuffer].self, from: "EVALSHA").map { Array($0.readableBytesView) }
        var letters: [FleetStatus.DeadLetter] = []
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            if let record = Self.deadLetterRecord(elements[index]) {
                letters.append(record)
            } else {
                letters.append(FleetStatus.DeadLetter(id: jobID(of: elements[index + 1])))
            }
        }
        return letters.reversed()
    }

    /// A record the reaper wrote (`cjson`), read with the queue's own JSON reader; nil when absent or malformed.
    static func deadLetterRecord(_ bytes: [UInt8]) -> FleetStatus.DeadLetter? {
        guard !bytes.isEmpty, case .object(let record)? = try? JobJSONReader.read(bytes).value else { return nil }
        func string(_ key: String) -> String? {
            if case .string(let value)? = record[key] { return value }
            return nil
        }
        func int(_ key: String) -> Int? {
            switch record[key] {
            case .int(let value)?: return value
            case .double(let value)? where value.isFinite && abs(value) < 1e15: return Int(value)
            default: return nil
            }
        }
        return FleetStatus.DeadLetter(
            id: string("id"), reason: string("reason"), attempts: int("attempts"), deadAtMilliseconds: int("dead_at_ms"),
            workerID: string("worker_id"))
    }

    private func jobID(of payload: [UInt8]) -> String? {
        switch parser.parse(payload) {
        case .success(let request): request.id
        case .failure(let invalid): invalid.id
        }
    }

    private func length(of list: String) async throws -> Int {
        try await command("LLEN", list, as: Int.self)
    }

    /// Redis's clock: every time `status` shows is on it (claim times and dead-letter times are written from it).
    private func redisMilliseconds() async throws -> Int {
        let parts = try await command("TIME", as: [String].self)
        guard parts.count == 2, let seconds = Int(parts[0]), let microseconds = Int(parts[1]) else {
            throw JobQueueError(.unexpectedReply, "TIME replied \(parts)")
        }
        return seconds * 1000 + microseconds / 1000
    }

    private func strings(script: RedisScript, keys: [String], arguments: [any RESPBulkStringEncodable]) async throws -> [String] {
        try Self.decode(try await client.evalScript(script, keys: keys, arguments: arguments), as: [String].self, from: "EVALSHA")
    }
}
