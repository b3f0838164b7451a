/// Everything the Worker asks of a job queue, and all it may assume.
///
/// ``JobQueue`` implements it on Redis (docs/reliability.md says how); tests implement it in memory, so
/// the Worker's lifecycle (claim loop, slots, outbox, drain) can be checked without a server. A new
/// backend keeps the same promises:
/// - a claimed job stays with the queue (not only in the worker's memory) until ``finish(_:outcome:)``,
///   ``rejectInvalid(_:_:)`` or ``requeue(_:)`` lets it go, so a worker that dies loses nothing;
/// - at most one terminal status is ever published per job id, however many deliveries try;
/// - every call may throw while the backend is unreachable: the Worker retries (claims with backoff,
///   writes through its outbox), so a call must be safe to repeat once it is known not to have applied.
public protocol JobQueueBackend: Sendable {
    /// The next job, waiting at most `timeout`; nil when none came. Invalid payloads are returned too
    /// (``ClaimedJob/job`` is a failure) for the caller to report with ``rejectInvalid(_:_:)``.
    func claim(timeout: Duration) async throws -> ClaimedJob?

    /// Reports `received` or `running` for a claimed job. Returns whether it was pushed (not after the
    /// job's terminal status, nor for a payload without a readable id).
    @discardableResult
    func publish(_ status: JobStatus, for claimed: ClaimedJob) async throws -> Bool

    /// Publishes the job's one terminal status and lets the job go. Returns false, publishing nothing,
    /// when another delivery already published one.
    @discardableResult
    func finish(_ claimed: ClaimedJob, outcome: JobOutcome) async throws -> Bool

    /// Reports a payload that is not a job (on its own status list when its id could be read, else where
    /// operators look for refused payloads) and lets it go.
    @discardableResult
    func rejectInvalid(_ claimed: ClaimedJob, _ invalid: InvalidJob) async throws -> Bool

    /// Appends entries to the output stream of job `id` (a job with `"stream": true`), in order, and keeps the
    /// stream alive as long as a status list. Best effort: the terminal status carries the whole output anyway.
    func appendOutput(_ entries: [OutputStreamEntry], for id: String) async throws

    /// Gives a claimed job back, at the head of the intake, for another worker (a drain). Returns false when
    /// the job was no longer this worker's.
    @discardableResult
    func requeue(_ claimed: ClaimedJob) async throws -> Bool

    /// Gives back the jobs the queue holds for this worker that are not among `held` (claims whose reply was
    /// lost with the connection). Returns how many went back.
    @discardableResult
    func requeueOrphans(holding held: [[UInt8]]) async throws -> Int

    /// Keeps this worker known to be alive, and recovers the jobs of workers that died, until the task is
    /// cancelled. Errors are the backend's to log and retry: it never returns early.
    func runMaintenance() async

    /// Leaves cleanly: every job still held goes back to the intake, and this worker stops counting as
    /// alive. Returns how many jobs were given back.
    @discardableResult
    func shutdown() async throws -> Int

    /// Which of `ids` a platform asked to cancel (their durable cancel marks). May throw while unreachable.
    /// Has a default: no job is ever cancelled.
    func cancelRequested(among ids: [String]) async throws -> Set<String>

    /// Cancel requests as platforms publish them, and ``CancelNotification/resubscribed`` whenever requests
    /// may have been missed (then the Worker asks ``cancelRequested(among:)`` about the jobs it runs). Never
    /// ends while the backend is in use, unless it has no cancellation (the default ends at once).
    func cancelNotifications() -> AsyncStream<CancelNotification>
}

extension JobQueueBackend {
    /// Which of `ids` a platform asked to cancel. A backend without cancellation: none.
    public func cancelRequested(among ids: [String]) async throws -> Set<String> { [] }

    /// Cancel requests as they are published. A backend without cancellation: a stream that ends at once.
    public func cancelNotifications() -> AsyncStream<CancelNotification> {
        AsyncStream { $0.finish() }
    }
}

extension JobQueueBackend {
    /// Backends without output streams (tests' in-memory queues) publish nothing.
    public func appendOutput(_ entries: [OutputStreamEntry], for id: String) async throws {}
}
