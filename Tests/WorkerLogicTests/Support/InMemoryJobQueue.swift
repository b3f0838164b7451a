import JobQueue

/// A ``JobQueueBackend`` in memory, keeping the promises the Worker relies on (docs/reliability.md) without
/// Redis: a claimed job stays in this worker's processing list until it is finished, rejected or requeued;
/// a job id gets at most one terminal status; requeued jobs go back to the head of the intake.
///
/// Payloads are read by JobQueue's own ``JobParser``, as the Redis queue reads them, so a job means the same
/// here. ``setReachable(_:)`` simulates an outage: every call throws until it is over.
actor InMemoryJobQueue: JobQueueBackend {
    struct Unreachable: Error, CustomStringConvertible {
        var description: String { "the in-memory queue is unreachable (simulated outage)" }
    }

    /// Payloads waiting, head first.
    private(set) var intake: [[UInt8]] = []
    /// Payloads claimed and not let go, oldest first.
    private(set) var processing: [[UInt8]] = []
    /// The most payloads ever held at once in ``processing``.
    private(set) var peakProcessing = 0
    /// Each job's status list, as a platform would read it (`received`, `running`, `done`, stdout, ...).
    private(set) var statusLists: [String: [String]] = [:]
    /// Each job's terminal outcome, as published.
    private(set) var outcomes: [String: JobOutcome] = [:]
    /// Refused payloads without a readable id (the Redis queue's `jobs:invalid`).
    private(set) var invalidEntries: [InvalidJob] = []
    /// Every write that went through, in order: `"<id> received"`, `"<id> done"`, `"<id> requeued"`.
    private(set) var writes: [String] = []
    /// Maintenance ticks while reachable (the Redis queue's heartbeats).
    private(set) var heartbeats = 0
    /// Set by ``shutdown()``.
    private(set) var didShutDown = false
    /// Each streamed job's output stream entries (the Redis queue's `codebench:output:<id>`).
    private(set) var outputStreams: [String: [OutputStreamEntry]] = [:]

    private let parser: JobParser
    private var terminal: Set<String> = []
    private var reachable = true
    private var loseNextClaimReply = false
    /// Longest a claim waits for a job: short, so a stopping claim loop is not held up (Redis blocks for
    /// up to a second; the tests would only wait longer).
    private let maximumBlock: Duration

    init(maximumPayloadBytes: Int = 1 << 20, maximumBlock: Duration = .milliseconds(20)) {
        parser = JobParser(maximumPayloadBytes: maximumPayloadBytes)
        self.maximumBlock = maximumBlock
    }

    // MARK: The test's side

    /// `RPUSH jobs <payload>`.
    func push(_ payloads: String...) {
        intake += payloads.map { Array($0.utf8) }
    }

    /// Starts (false) or ends (true) a simulated outage.
    func setReachable(_ value: Bool) {
        reachable = value
    }

    /// The next claim moves its job into the processing list and then fails, as when the connection dies
    /// after BLMOVE ran but before its reply arrived.
    func loseTheNextClaimReply() {
        loseNextClaimReply = true
    }

    // MARK: JobQueueBackend

    func appendOutput(_ entries: [OutputStreamEntry], for id: String) async throws {
        guard reachable else { throw Unreachable() }
        outputStreams[id, default: []] += entries
    }

    func claim(timeout: Duration) async throws -> ClaimedJob? {
        let deadline = ContinuousClock.now + min(timeout, maximumBlock)
        while true {
            try checkReachable()
            if !intake.isEmpty {
                let payload = intake.removeFirst()
                processing.append(payload)
                peakProcessing = max(peakProcessing, processing.count)
                if loseNextClaimReply {
                    loseNextClaimReply = false
                    throw Unreachable()
                }
                let claimed = ClaimedJob(payload: payload, job: parser.parse(payload), deliveries: 1)
                // A job that already has its terminal status is dropped at claim, as the claim check does.
                if let id = claimed.id, terminal.contains(id) {
                    remove(payload)
                    continue
                }
                return claimed
            }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func publish(_ status: JobStatus, for claimed: ClaimedJob) async throws -> Bool {
        try checkReachable()
        guard let id = claimed.id, !terminal.contains(id) else { return false }
        statusLists[id, default: []].append(status.rawValue)
        writes.append("\(id) \(status.rawValue)")
        return true
    }

    func finish(_ claimed: ClaimedJob, outcome: JobOutcome) async throws -> Bool {
        try checkReachable()
        guard let id = claimed.id else { throw Misuse("finish without a readable id: use rejectInvalid") }
        remove(claimed.payload)
        guard terminal.insert(id).inserted else { return false }
        switch outcome {
        case .done(let stdout, let stderr, let record):
            statusLists[id, default: []] += [
                "done", String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self), record.json(),
            ]
            writes.append("\(id) done")
        case .failed(let reason, let record):
            statusLists[id, default: []] += ["failed", reason, (record ?? JobResultRecord()).json()]
            writes.append("\(id) failed")
        }
        outcomes[id] = outcome
        return true
    }

    func rejectInvalid(_ claimed: ClaimedJob, _ invalid: InvalidJob) async throws -> Bool {
        if invalid.id != nil {
            return try await finish(claimed, outcome: .failed(reason: invalid.reason, result: nil))
        }
        try checkReachable()
        guard remove(claimed.payload) else { return false }
        invalidEntries.append(invalid)
        writes.append("- invalid")
        return true
    }

    func requeue(_ claimed: ClaimedJob) async throws -> Bool {
        try checkReachable()
        guard remove(claimed.payload) else { return false }
        intake.insert(claimed.payload, at: 0)
        writes.append("\(claimed.id ?? "-") requeued")
        return true
    }

    func requeueOrphans(holding held: [[UInt8]]) async throws -> Int {
        try checkReachable()
        var unmatched = held
        var orphans: [[UInt8]] = []
        processing.removeAll { payload in
            if let index = unmatched.firstIndex(of: payload) {
                unmatched.remove(at: index)
                return false
            }
            orphans.append(payload)
            return true
        }
        intake.insert(contentsOf: orphans, at: 0)
        return orphans.count
    }

    func runMaintenance() async {
        while !Task.isCancelled {
            if reachable { heartbeats += 1 }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func shutdown() async throws -> Int {
        try checkReachable()
        let returned = processing.count
        intake.insert(contentsOf: processing, at: 0)
        processing.removeAll()
        didShutDown = true
        return returned
    }

    // MARK: Helpers

    private func checkReachable() throws {
        guard reachable else { throw Unreachable() }
    }

    /// Removes one copy of `payload` from the processing list; false when it held none.
    @discardableResult
    private func remove(_ payload: [UInt8]) -> Bool {
        guard let index = processing.firstIndex(of: payload) else { return false }
        processing.remove(at: index)
        return true
    }

    struct Misuse: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
