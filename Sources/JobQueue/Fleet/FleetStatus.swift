/// The fleet at a glance, as read from Redis by ``JobQueue/fleetStatus(deadLetters:scanUnregistered:)``: what
/// `codebench-worker status` prints and the dashboard's `/fleet.json` serves. Every time is on Redis's clock.
public struct FleetStatus: Sendable, Equatable {
    /// One Redis list and how many entries it holds.
    public struct Queue: Sendable, Equatable {
        public enum Role: String, Sendable {
            case intake, processing, invalid, dead
        }

        public var role: Role
        public var name: String
        public var depth: Int
        /// The processing list's worker.
        public var workerID: String?
    }

    /// A job a worker holds, by the id it recorded at claim.
    public struct RunningJob: Sendable, Equatable {
        /// nil for a payload whose id could not be read.
        public var id: String?
        /// When its current delivery was claimed; nil when unknown (claimed by an older worker).
        public var claimedAtMilliseconds: Int?
    }

    /// A worker that is registered or holds a processing list.
    public struct Worker: Sendable, Equatable {
        public var id: String
        /// In the workers set (an unregistered one only shows because it still has a processing list).
        public var registered: Bool
        /// How long ago its heartbeat was refreshed; nil when the heartbeat key is gone (dead, the reaper will act).
        public var heartbeatAgeMilliseconds: Int?
        /// What it says about itself; nil when its info hash is gone.
        public var info: WorkerInfo?
        /// Entries of its processing list (``jobs`` shows the first ``JobQueue/fleetJobsPerWorker``).
        public var processingDepth: Int
        public var jobs: [RunningJob]

        public var alive: Bool { heartbeatAgeMilliseconds != nil }
    }

    /// One entry of the dead-letter list.
    public struct DeadLetter: Sendable, Equatable {
        public var id: String?
        public var reason: String?
        public var attempts: Int?
        public var deadAtMilliseconds: Int?
        /// The worker whose death dead-lettered it.
        public var workerID: String?
    }

    /// Redis's clock when the status was read.
    public var generatedAtMilliseconds: Int
    /// Intake lists, then every processing list, then the invalid and dead-letter lists.
    public var queues: [Queue]
    public var workers: [Worker]
    /// The newest dead-lettered jobs, newest first.
    public var deadLetters: [DeadLetter]
}

extension FleetStatus {
    /// The `--json` and `/fleet.json` document (docs/fleet.md describes it); `observer` names the worker serving it.
    public func json(observer: String? = nil) -> String {
        var root: [String: JSONValue] = [
            "version": 1,
            "generated_at_ms": .int(generatedAtMilliseconds),
            "queues": .array(queues.map(\.json)),
            "workers": .array(workers.map { $0.json(now: generatedAtMilliseconds) }),
            "dead_letters": .array(deadLetters.map { $0.json(now: generatedAtMilliseconds) }),
        ]
        if let observer { root["observer"] = .string(observer) }
        return JSONValue.object(root).serialized
    }
}

extension FleetStatus.Queue {
    var json: JSONValue {
        var object: [String: JSONValue] = ["role": .string(role.rawValue), "name": .string(name), "depth": .int(depth)]
        if let workerID { object["worker_id"] = .string(workerID) }
        return .object(object)
    }
}

extension FleetStatus.Worker {
    func json(now: Int) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "registered": .bool(registered), "alive": .bool(alive),
            "heartbeat_age_ms": heartbeatAgeMilliseconds.map(JSONValue.int) ?? .null,
            "processing_depth": .int(processingDepth),
            "jobs": .array(jobs.map { job in
                .object([
                    "id": job.id.map(JSONValue.string) ?? .null,
                    "claimed_at_ms": job.claimedAtMilliseconds.map(JSONValue.int) ?? .null,
                    "age_ms": job.claimedAtMilliseconds.map { .int(max(0, now - $0)) } ?? .null,
                ])
            }),
        ]
        for (key, value) in infoFields { object[key] = value }
        return .object(object)
    }

    private var infoFields: [String: JSONValue] {
        guard let info else {
            return ["host": .null, "vmm": .null, "pid": .null, "version": .null, "started_at_ms": .null, "concurrency": .null]
        }
        return [
            "host": .string(info.host), "vmm": .string(info.vmm), "pid": .int(info.pid), "version": .string(info.version),
            "started_at_ms": .int(info.startedAtMilliseconds), "concurrency": .int(info.concurrency),
        ]
    }
}

extension FleetStatus.DeadLetter {
    func json(now: Int) -> JSONValue {
        .object([
            "id": id.map(JSONValue.string) ?? .null,
            "reason": reason.map(JSONValue.string) ?? .null,
            "attempts": attempts.map(JSONValue.int) ?? .null,
            "dead_at_ms": deadAtMilliseconds.map(JSONValue.int) ?? .null,
            "age_ms": deadAtMilliseconds.map { .int(max(0, now - $0)) } ?? .null,
            "worker_id": workerID.map(JSONValue.string) ?? .null,
        ])
    }
}
