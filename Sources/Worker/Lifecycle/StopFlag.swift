import Synchronization

/// Set once when the worker must stop claiming (graceful shutdown or cancellation); read by the claim loop.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }
}
