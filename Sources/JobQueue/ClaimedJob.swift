/// A payload moved from the intake to this worker's processing list. It stays there, safe from a crash, until
/// ``JobQueue/finish(_:outcome:)``, ``JobQueue/rejectInvalid(_:_:)`` or ``JobQueue/requeue(_:)``.
public struct ClaimedJob: Sendable {
    /// The payload exactly as claimed: it identifies the entry in the processing list.
    public let payload: [UInt8]
    /// The validated job, or why it is not one.
    public let job: Result<JobRequest, InvalidJob>
    /// Which delivery this is: 1, or more when workers died while holding the job.
    public let deliveries: Int
    /// When the worker claimed it (for `queue_ms`).
    public let claimedAt: ContinuousClock.Instant

    /// The job id when one could be read, valid job or not.
    public var id: String? {
        switch job {
        case .success(let request): request.id
        case .failure(let invalid): invalid.id
        }
    }

    public init(payload: [UInt8], job: Result<JobRequest, InvalidJob>, deliveries: Int, claimedAt: ContinuousClock.Instant = .now) {
        self.payload = payload
        self.job = job
        self.deliveries = deliveries
        self.claimedAt = claimedAt
    }
}

/// What one reaper pass did.
public struct ReapReport: Sendable, Equatable {
    /// False when another worker held the reaper lock: this pass did nothing.
    public var acquiredLock: Bool
    /// Workers found dead and unregistered.
    public var deadWorkers: [String]
    /// Jobs returned to the head of the intake.
    public var requeued: Int
    /// Jobs moved to the dead-letter list (with `failed` on their status list).
    public var deadLettered: Int
    /// Jobs dropped because their terminal status was already published.
    public var alreadyFinished: Int

    public init(acquiredLock: Bool, deadWorkers: [String] = [], requeued: Int = 0, deadLettered: Int = 0, alreadyFinished: Int = 0) {
        self.acquiredLock = acquiredLock
        self.deadWorkers = deadWorkers
        self.requeued = requeued
        self.deadLettered = deadLettered
        self.alreadyFinished = alreadyFinished
    }
}

/// A queue operation that Redis answered unexpectedly, or that was misused.
public struct JobQueueError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Redis replied with a type the script or command cannot return.
        case unexpectedReply = "unexpected_reply"
        /// The claimed payload has no readable id, so it has no status list.
        case noJobID = "no_job_id"
        /// `publish` was asked for a terminal status: those go through `finish`.
        case terminalStatus = "terminal_status"
        /// The Redis URL given to ``JobQueue/init(redisURL:clientName:reconnectAttempts:commandTimeout:configuration:logger:)``
        /// cannot be used.
        case invalidRedisURL = "invalid_redis_url"
        /// `requeue-dead` was asked for an id that no dead-lettered job has.
        case notDeadLettered = "not_dead_lettered"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
