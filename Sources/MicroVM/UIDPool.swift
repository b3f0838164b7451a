import Synchronization

/// Hands out one uid per live VM from a range, so no two jailed VMMs share an identity. Used by
/// both jails: Firecracker's jailer (`--uid`) and QEMU's.
public final class UIDPool: Sendable {
    private static let pools = Mutex<[ClosedRange<UInt32>: UIDPool]>([:])

    /// The one pool of this process for `range`: drivers (and tests) that jail with the same range
    /// share it, so two VMs of one process never get the same uid.
    public static func shared(range: ClosedRange<UInt32>) -> UIDPool {
        pools.withLock { pools in
            if let pool = pools[range] { return pool }
            let pool = UIDPool(range: range)
            pools[range] = pool
            return pool
        }
    }

    public let range: ClosedRange<UInt32>
    private let inUse = Mutex<Set<UInt32>>([])

    public init(range: ClosedRange<UInt32>) {
        self.range = range
    }

    /// A free uid, or nil when every uid in the range is taken.
    public func acquire() -> UInt32? {
        inUse.withLock { used in
            for uid in range where !used.contains(uid) {
                used.insert(uid)
                return uid
            }
            return nil
        }
    }

    public func release(_ uid: UInt32) {
        _ = inUse.withLock { $0.remove(uid) }
    }

    public var count: Int { inUse.withLock { $0.count } }
}
