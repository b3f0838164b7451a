import JobQueue
import Logging

/// Listens on the queue's cancel channel and stops the jobs it names that run here. Whenever the channel was
/// (re)subscribed, requests published meanwhile may have been missed, so it reads the durable cancel marks of
/// every job running here. Never throws: a failed read is logged, and the next resubscription reads again.
struct CancelWatcher: Sendable {
    let queue: any JobQueueBackend
    let running: RunningJobs
    let logger: Logger

    /// Until the task is cancelled (or the backend has no cancellation).
    func run() async {
        for await notification in queue.cancelNotifications() {
            switch notification {
            case .cancel(let id):
                if running.cancel(id) > 0 {
                    logger.notice("cancel requested for a running job", metadata: ["job.id": "\(id)"])
                }
            case .resubscribed:
                await recheck()
            }
        }
    }

    /// A server that has just come back may still be loading its data: a few tries, spaced out.
    private func recheck() async {
        let queue = self.queue
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        for attempt in 1...5 {
            let ids = running.ids
            guard !ids.isEmpty else { return }
            do {
                let marked = try await Task { try await queue.cancelRequested(among: ids) }.value
                for id in marked {
                    logger.notice("cancel mark found for a running job after resubscribing", metadata: ["job.id": "\(id)"])
                    running.cancel(id)
                }
                return
            } catch {
                logger.warning(
                    "could not read the cancel marks of running jobs", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                guard await backoff.wait() else { return }
            }
        }
    }
}
