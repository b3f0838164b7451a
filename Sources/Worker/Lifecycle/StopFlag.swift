import Synchronization

/// Set once when the worker must stop claiming (graceful shutdown or cancellation); read by the claim loop.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)

    private let changed = Signal()

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() {
        value.store(true, ordering: .releasing)
        changed.notify()
    }

    /// Sleeps until `deadline`, or less if the flag is set meanwhile (a backoff must not hold up a stop).
    func sleep(until deadline: ContinuousClock.Instant) async {
        while !isSet, ContinuousClock.now < deadline {
            await changed.wait(until: deadline)
        }
    }
}
