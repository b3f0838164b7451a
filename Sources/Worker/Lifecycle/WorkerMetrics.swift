import Metrics
import MicroVM
import Synchronization

/// The worker's metrics, made by the `MetricsFactory` it is given (the process-wide one in
/// production, a private registry in tests). Also the live-VM count the service reports in its logs.
final class WorkerMetrics: Sendable {
    enum Ending: String, CaseIterable {
        case done, failed, invalid, requeued, cancelled
    }

    private let liveVMs = Atomic<Int>(0)
    private let vmsGauge: Gauge
    private let vmTimer: Metrics.Timer
    private let vmHostCPUTimer: Metrics.Timer
    private let bootTimer: Metrics.Timer
    private let queueTimer: Metrics.Timer
    private let outages: Counter
    private let warmGauge: Gauge
    private let warmStarts: Counter
    private let endings: [Ending: Counter]

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        vmsGauge = Gauge(label: WorkerMetricNames.vmsRunning, factory: factory)
        vmTimer = Metrics.Timer(label: WorkerMetricNames.vmSeconds, factory: factory)
        vmHostCPUTimer = Metrics.Timer(label: WorkerMetricNames.vmHostCPUSeconds, factory: factory)
        bootTimer = Metrics.Timer(label: WorkerMetricNames.bootSeconds, factory: factory)
        queueTimer = Metrics.Timer(label: WorkerMetricNames.queueSeconds, factory: factory)
        outages = Counter(label: WorkerMetricNames.redisOutages, factory: factory)
        warmGauge = Gauge(label: WorkerMetricNames.vmsWarm, factory: factory)
        warmStarts = Counter(label: WorkerMetricNames.warmStarts, factory: factory)
        // Made up front so every ending is scraped as 0 before it first happens: a rate() over a
        // series that appears mid-way misses its first increment.
        endings = Dictionary(
            uniqueKeysWithValues: Ending.allCases.map {
                ($0, Counter(label: WorkerMetricNames.jobs, dimensions: [("ending", $0.rawValue)], factory: factory))
            })
        vmsGauge.record(0)
        warmGauge.record(0)
    }

    /// What the warm-VM pool reports.
    func warmPool(_ event: WarmVMPool.Event) {
        switch event {
        case .idle(let count): warmGauge.record(count)
        case .handedOut: warmStarts.increment()
        }
    }

    /// VMs currently between boot and teardown in this process.
    var runningVMs: Int { liveVMs.load(ordering: .relaxed) }

    func finished(_ ending: Ending) {
        endings[ending]?.increment()
    }

    /// From claim to the VM's start: time a job spent waiting inside this worker.
    func queued(_ duration: Duration) {
        queueTimer.recordNanoseconds(duration.nanoseconds)
    }

    /// Until the guest agent answered.
    func booted(in duration: Duration) {
        bootTimer.recordNanoseconds(duration.nanoseconds)
    }

    /// What a torn-down VM cost the host, when its driver could tell.
    func used(_ usage: VMUsage) {
        if let cpu = usage.vmmCPUTime { vmHostCPUTimer.recordNanoseconds(cpu.nanoseconds) }
    }

    /// Once per outage, when the first claim fails.
    func redisOutageBegan() {
        outages.increment()
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
