import Synchronization

/// What one job's VM cost the host, known once it has been torn down
/// (``MicroVMDriver/withVM(_:logger:usage:_:)``).
public struct VMUsage: Sendable, Hashable {
    /// Host CPU time, user and system, of the VMM process and of the descendants it reaped: a jailed
    /// QEMU's launcher, QEMU and the guest it emulates, a streamed restore's reader. Counts every VM
    /// the call brought up (a restore that failed and the cold boot that replaced it), not a snapshot's
    /// template, whose cost is shared by every VM restored from it. Nil when some VMM's could not be
    /// read: a jailer's Firecracker in a PID namespace of its own is not the worker's child.
    public var vmmCPUTime: Duration?

    public init(vmmCPUTime: Duration?) {
        self.vmmCPUTime = vmmCPUTime
    }

    /// Adds one more VM's CPU time; an unknown one makes the total unknown.
    public mutating func add(_ cpuTime: Duration?) {
        guard let total = vmmCPUTime, let cpuTime else {
            vmmCPUTime = nil
            return
        }
        vmmCPUTime = total + cpuTime
    }
}

/// Keeps the last ``VMUsage`` reported to it, for a caller of
/// ``MicroVMDriver/withVM(_:logger:usage:_:)`` that reads it once the call has returned.
public final class VMUsageRecorder: Sendable {
    private let value = Mutex(VMUsage(vmmCPUTime: nil))

    public init() {}

    /// The `usage` closure to hand the driver.
    @Sendable public func record(_ usage: VMUsage) { value.withLock { $0 = usage } }

    /// What was last recorded; an unknown cost until then.
    public var usage: VMUsage { value.withLock { $0 } }
}
