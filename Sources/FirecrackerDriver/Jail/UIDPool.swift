import Synchronization

/// Hands out one uid per live VM from a range, so no two jailed VMMs share an identity.
public final class UIDPool: Sendable {
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
