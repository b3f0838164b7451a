import Synchronization

/// One running job's cancel switch: ``request()`` may come from the cancel channel at any moment, before or
/// after the job has something to stop; the action registered with ``onRequest(_:)`` runs exactly once either way.
final class JobCancellation: Sendable {
    private struct State {
        var requested = false
        var action: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    /// Whether a platform asked to cancel the job.
    var isRequested: Bool { state.withLock { $0.requested } }

    /// Marks the job cancelled and runs the registered action, if any (once).
    func request() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.requested else { return nil }
            state.requested = true
            defer { state.action = nil }
            return state.action
        }
        action?()
    }

    /// What cancelling does from now on (stop the job's VM); runs at once when the job is already cancelled.
    func onRequest(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.requested { return true }
            state.action = action
            return false
        }
        if runNow { action() }
    }

    /// Forgets the action: the job's VM is gone, nothing is left to stop.
    func clearAction() {
        state.withLock { $0.action = nil }
    }
}

/// The jobs this worker runs, by id, so a cancel request heard on the channel finds its job.
final class RunningJobs: Sendable {
    private let jobs = Mutex<[String: [ObjectIdentifier: JobCancellation]]>([:])

    /// Registers a job before its cancel mark is read, so a request arriving after that read is heard.
    func register(_ id: String) -> JobCancellation {
        let cancellation = JobCancellation()
        jobs.withLock { $0[id, default: [:]][ObjectIdentifier(cancellation)] = cancellation }
        return cancellation
    }

    func unregister(_ id: String, _ cancellation: JobCancellation) {
        jobs.withLock { jobs in
            jobs[id]?[ObjectIdentifier(cancellation)] = nil
            if jobs[id]?.isEmpty == true { jobs[id] = nil }
        }
    }

    /// Cancels every job running under `id`; returns how many there were (0 for an id not running here).
    @discardableResult
    func cancel(_ id: String) -> Int {
        let found = jobs.withLock { Array(($0[id] ?? [:]).values) }
        for cancellation in found { cancellation.request() }
        return found.count
    }

    /// The ids running now.
    var ids: [String] { jobs.withLock { Array($0.keys) } }
}
