import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One OS thread that lives as long as the process and does every spawn of a VMM.
///
/// A child's parent-death signal (`PR_SET_PDEATHSIG`, which the QEMU jail and the egress proxy
/// rely on to die with the worker) fires when the *thread* that forked it exits, not the process.
/// Swift's concurrency pool lets idle threads exit after a few seconds, which would kill a VM
/// mid-job; this thread never exits.
package final class SpawnerThread: Sendable {
    package static let shared = SpawnerThread()

    private final class WorkQueue: Sendable {
        let pending = Mutex<[@Sendable () -> Void]>([])
        let wakeUp = DispatchSemaphore(value: 0)
    }

    private let queue = WorkQueue()
    private let started: Bool

    private init() {
        let queue = self.queue
        started = (try? startDetachedThread {
            while true {
                queue.wakeUp.wait()
                let work = queue.pending.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                work?()
            }
        }) != nil
    }

    /// Runs `body` on the spawner thread and returns its result. Quick calls only (a posix_spawn):
    /// every spawn of the process waits in line.
    package func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        guard started else { throw VMError(.vmmUnavailable, "the VMM spawner thread could not be started") }
        return await withCheckedContinuation { continuation in
            queue.pending.withLock { $0.append { continuation.resume(returning: body()) } }
            queue.wakeUp.signal()
        }
    }
}
