import Logging
import MicroVM
import QEMUDriver
import Synchronization

/// Wraps a real driver and counts VMs: how many are live now and the most that ever were at once.
/// The worker runs the inner driver's standby VMMs through it, as it runs a production driver's.
final class CountingDriver: VMMStandbyDriver {
    let inner: any MicroVMDriver
    private let counts = Mutex<(live: Int, peak: Int, total: Int)>((0, 0, 0))

    init(_ inner: any MicroVMDriver) { self.inner = inner }

    var name: String { inner.name }

    /// The parked standby QEMUs of the inner driver: QEMU processes that belong to no job's VM.
    var standbyPIDs: [Int32] { (inner as? QEMUDriver)?.standbyProcessIDs ?? [] }

    func runStandby() async {
        await (inner as? any VMMStandbyDriver)?.runStandby()
    }
    var live: Int { counts.withLock { $0.live } }
    var peak: Int { counts.withLock { $0.peak } }
    var total: Int { counts.withLock { $0.total } }

    func withVM<T: Sendable>(
        _ configuration: VMConfiguration, logger: Logger, usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        counts.withLock {
            $0.live += 1
            $0.total += 1
            $0.peak = max($0.peak, $0.live)
        }
        defer { counts.withLock { $0.live -= 1 } }
        return try await inner.withVM(configuration, logger: logger, usage: usage, body)
    }
}
