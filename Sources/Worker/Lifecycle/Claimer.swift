import JobQueue
import Logging

/// Claims the next job, riding out Redis outages: an error is logged once per outage and retried
/// with backoff, never thrown, so a lost connection cannot stop the worker. Each claim's outcome is
/// also the worker's readiness: the claim is the one call that tells whether jobs can be taken.
struct Claimer {
    let queue: any JobQueueBackend
    let logger: Logger
    let health: WorkerHealth
    let metrics: WorkerMetrics
    /// Short, so the claim loop notices shutdown quickly even when the queue is idle.
    var blockFor: Duration = .seconds(1)
    private var backoff = Backoff()
    private var unreachableSince: ContinuousClock.Instant?
    /// Set when Redis came back after an outage; the claim loop then looks for orphaned claims.
    var recoveredFromOutage = false

    init(queue: any JobQueueBackend, health: WorkerHealth, metrics: WorkerMetrics, logger: Logger) {
        self.queue = queue
        self.health = health
        self.metrics = metrics
        self.logger = logger
    }

    /// The next job, or nil when none came within ``blockFor`` or Redis failed.
    mutating func next(stop: StopFlag) async -> ClaimedJob? {
        let queue = self.queue
        let blockFor = self.blockFor
        do {
            // Shielded from cancellation: a BLMOVE abandoned half-way could move a job into our
            // processing list without us knowing; letting it end (within `blockFor`) avoids that.
            let claimed = try await Task { try await queue.claim(timeout: blockFor) }.value
            if let since = unreachableSince {
                logger.notice("Redis reachable again", metadata: ["outage_ms": "\((ContinuousClock.now - since).milliseconds)"])
                unreachableSince = nil
                recoveredFromOutage = true
            }
            health.claimSucceeded()
            backoff.reset()
            return claimed
        } catch {
            if unreachableSince == nil {
                let since = ContinuousClock.now
                unreachableSince = since
                health.claimFailed(since: since)
                metrics.redisOutageBegan()
                logger.warning("cannot claim jobs, Redis unreachable; retrying with backoff", metadata: ["error": "\(error)"])
            }
            await stop.sleep(until: ContinuousClock.now + backoff.next())
            return nil
        }
    }
}
