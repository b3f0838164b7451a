import Metrics
import Synchronization

/// The worker's metrics (swift-metrics; the process picks the backend). Also the live-VM count the
/// service reports in its logs.
final class WorkerMetrics: Sendable {
    enum Ending: String {
        case done, failed, invalid, requeued
    }

    private let liveVMs = Atomic<Int>(0)
    private let vmsGauge = Gauge(label: "codebench_worker_vms_running")
    private let vmTimer = Metrics.Timer(label: "codebench_worker_vm_seconds")

    /// VMs currently between boot and teardown in this process.
    var runningVMs: Int { liveVMs.load(ordering: .relaxed) }

    func finished(_ ending: Ending) {
        Counter(label: "codebench_worker_jobs_total", dimensions: [("ending", ending.rawValue)]).increment()
    }

    /// Runs `body` (one VM's lifetime) and keeps the live-VM gauge right, also on errors.
    func countingVM<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        vmsGauge.record(liveVMs.add(1, ordering: .relaxed).newValue)
        defer {
            vmsGauge.record(liveVMs.subtract(1, ordering: .relaxed).newValue)
            vmTimer.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        }
        return try await body()
    }
}
