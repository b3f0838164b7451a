import Synchronization

/// Whether the worker can take jobs, for a readiness probe. The ``WorkerService`` moves it along
/// (starting → ready ⇄ Redis unreachable → draining); a status endpoint reads ``notReadyReason``
/// from any thread.
///
/// Busy slots do not make a worker unready: it pulls work, nothing is routed to it, and a probe
/// that flapped with load would only page someone for a healthy worker.
public final class WorkerHealth: Sendable {
    /// Where the worker is in its life.
    public enum State: Sendable, Equatable {
        /// Not yet through its first claim.
        case starting
        case ready
        /// Claims fail since `since`; the worker retries with backoff.
        case redisUnreachable(since: ContinuousClock.Instant)
        /// Graceful shutdown began: no new claims, running jobs finish.
        case draining
    }

    private let current = Mutex<State>(.starting)
    private let warnings = Mutex<[String]>([])

    public init() {}

    public var state: State { current.withLock { $0 } }

    /// What a ready worker's operator must know, for the probe's body beside `ready` (`qemu-jail=off:
    /// QEMU runs unjailed as root`); nil when nothing. It does not make the worker unready: the
    /// operator chose it, and a probe that failed for it would only take the worker out of service.
    public var warning: String? {
        warnings.withLock { $0.isEmpty ? nil : $0.joined(separator: "; ") }
    }

    /// Adds a warning that holds for the rest of the worker's life (once, however often it is given).
    func warn(_ text: String) {
        warnings.withLock { if !$0.contains(text) { $0.append(text) } }
    }

    /// nil when ready, else one line for the probe's body: `starting`, `redis unreachable since 3 s`, `draining`.
    public var notReadyReason: String? {
        switch state {
        case .ready: nil
        case .starting: "starting"
        case .draining: "draining"
        case .redisUnreachable(let since): "redis unreachable since \((ContinuousClock.now - since).components.seconds) s"
        }
    }

    /// A claim reached Redis. Ignored once draining, which is final.
    func claimSucceeded() {
        current.withLock { state in
            if state != .draining { state = .ready }
        }
    }

    /// A claim failed; keeps the start of an outage already under way.
    func claimFailed(since: ContinuousClock.Instant) {
        current.withLock { state in
            switch state {
            case .draining, .redisUnreachable: break
            case .starting, .ready: state = .redisUnreachable(since: since)
            }
        }
    }

    func startDraining() {
        current.withLock { $0 = .draining }
    }
}
