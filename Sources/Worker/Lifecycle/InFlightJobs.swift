import Synchronization

/// Payloads this worker has claimed and not yet finished: what its processing list should hold.
/// A multiset, because a platform may push the same payload twice.
final class InFlightJobs: Sendable {
    private let payloads = Mutex<[[UInt8]: Int]>([:])

    func insert(_ payload: [UInt8]) {
        payloads.withLock { $0[payload, default: 0] += 1 }
    }

    func remove(_ payload: [UInt8]) {
        payloads.withLock { payloads in
            if let count = payloads[payload], count > 1 {
                payloads[payload] = count - 1
            } else {
                payloads[payload] = nil
            }
        }
    }

    /// Every payload held, repeated as many times as it is held.
    var all: [[UInt8]] {
        payloads.withLock { $0.flatMap { Array(repeating: $0.key, count: $0.value) } }
    }
}
