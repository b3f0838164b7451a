import JobQueue
import Logging

/// Every write the worker makes for a job goes through here, in order. While Redis answers, a write
/// is made at once; when it does not, the write is kept (at most `capacity`, oldest kept) and
/// retried with backoff by ``run()``, so results of jobs that finished during an outage are
/// published once Redis is back, and the job's own writes never overtake each other.
actor Outbox {
    enum Item: Sendable {
        case status(JobStatus, ClaimedJob)
        case finish(ClaimedJob, JobOutcome)
        case reject(ClaimedJob, InvalidJob)
        case requeue(ClaimedJob)
    }

    private let queue: any JobQueueBackend
    private let capacity: Int
    private let logger: Logger
    /// How ``run()`` paces its retries while the queue stays unreachable.
    private let retry: Backoff
    private var pending: [(item: Item, logger: Logger)] = []
    private var dropped = 0
    /// Wakes ``run()`` when a write is kept, instead of it polling an empty outbox.
    private let kept = Signal()

    init(queue: any JobQueueBackend, capacity: Int, retry: Backoff = Backoff(), logger: Logger) {
        self.queue = queue
        self.capacity = capacity
        self.retry = retry
        self.logger = logger
    }

    /// Writes kept for later.
    var count: Int { pending.count }
    /// Writes refused because the outbox was full (each is logged when it happens).
    var droppedCount: Int { dropped }

    /// Makes the write now if nothing is waiting before it, else (or if Redis fails) keeps it.
    func submit(_ item: Item, logger: Logger) async {
        if pending.isEmpty {
            do {
                try await perform(item, logger: logger)
                return
            } catch {
                logger.warning("Redis write failed, keeping it for retry", metadata: ["error": "\(error)"])
            }
        }
        guard pending.count < capacity else {
            // Oldest kept: the older results are the ones platforms have waited longest for. A job
            // whose write is dropped stays in this worker's processing list, so it is not lost.
            dropped += 1
            logger.error("outbox full, dropping a write", metadata: ["capacity": "\(capacity)", "dropped": "\(dropped)"])
            return
        }
        pending.append((item, logger))
        kept.notify()
    }

    /// Retries kept writes, oldest first, until the task is cancelled.
    func run() async {
        var backoff = retry
        while !Task.isCancelled {
            guard let (item, itemLogger) = pending.first else {
                await kept.wait()
                continue
            }
            do {
                try await perform(item, logger: itemLogger)
                pending.removeFirst()
                backoff.reset()
                if pending.isEmpty { logger.notice("Redis reachable again, outbox flushed") }
            } catch {
                itemLogger.debug("retrying Redis write failed", metadata: ["error": "\(error)"])
                if !(await backoff.wait()) { return }
            }
        }
    }

    /// Tries to empty the outbox before `deadline` (at shutdown); returns whether it is empty.
    func flush(before deadline: ContinuousClock.Instant) async -> Bool {
        var backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(1))
        while let (item, itemLogger) = pending.first, ContinuousClock.now < deadline {
            do {
                try await perform(item, logger: itemLogger)
                pending.removeFirst()
            } catch {
                try? await Task.sleep(for: min(backoff.next(), max(.zero, deadline - ContinuousClock.now)))
            }
        }
        if !pending.isEmpty {
            logger.error("shutting down with unpublished writes", metadata: ["count": "\(pending.count)"])
        }
        return pending.isEmpty
    }

    /// One write, shielded from the caller's cancellation: a job interrupted by shutdown must still
    /// be requeued, and a result must not be half-sent because its task was cancelled.
    private func perform(_ item: Item, logger: Logger) async throws {
        let queue = self.queue
        try await Task {
            switch item {
            case .status(let status, let claimed):
                _ = try await queue.publish(status, for: claimed)
            case .finish(let claimed, let outcome):
                if try await !queue.finish(claimed, outcome: outcome) {
                    logger.notice("job already had a terminal status; ours was not published")
                }
            case .reject(let claimed, let invalid):
                _ = try await queue.rejectInvalid(claimed, invalid)
            case .requeue(let claimed):
                if try await !queue.requeue(claimed) {
                    logger.notice("job was no longer ours to requeue (the reaper took it)")
                }
            }
        }.value
    }
}
