import Logging
import MicroVM
import Synchronization

/// Wraps a driver and records how long each VM lived (boot to teardown), so the worker's own
/// overhead per job is the enqueue-to-done latency minus that job's VM time, measured in the same run.
final class WorkerBenchmarkTimingDriver: VMMStandbyDriver {
    let inner: any MicroVMDriver
    private let spans = Mutex<[Duration]>([])

    init(_ inner: any MicroVMDriver) { self.inner = inner }

    var name: String { inner.name }

    func runStandby() async {
        await (inner as? any VMMStandbyDriver)?.runStandby()
    }

    /// `body` with the driver's standby VMMs running, as the worker runs them beside its jobs.
    func withStandby<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        let standby = Task { await runStandby() }
        defer { standby.cancel() }
        let value = try await body()
        standby.cancel()
        await standby.value
        return value
    }

    /// VM lifetimes in the order they ended.
    func takeSpans() -> [Duration] {
        spans.withLock { spans in
            defer { spans.removeAll() }
            return spans
        }
    }

    func withVM<T: Sendable>(
        _ configuration: VMConfiguration, logger: Logger, usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        let start = ContinuousClock.now
        defer {
            let span = ContinuousClock.now - start
            spans.withLock { $0.append(span) }
        }
        return try await inner.withVM(configuration, logger: logger, usage: usage, body)
    }
}

/// Percentiles of a sample, nearest-rank.
struct WorkerBenchmarkSample {
    var values: [Double]

    init(_ durations: [Duration]) {
        values = durations.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }.sorted()
    }

    func percentile(_ p: Double) -> Double {
        nearestRankPercentile(values, p) ?? .nan
    }

    /// "p50 812.3 ms  p95 901.0 ms  p99 920.4 ms  (n=20)"
    var summary: String {
        "p50 \(format(percentile(50))) ms  p95 \(format(percentile(95))) ms  p99 \(format(percentile(99))) ms  (n=\(values.count))"
    }

    private func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return String(tenths)
    }
}

/// One-at-a-time jobs through the worker: each one's enqueue-to-terminal latency, and what its VM
/// cost the host as the worker reported it (`host_cpu_ms` in the result JSON).
struct JobSeries {
    var latencies: [Duration] = []
    var vmCPU: [Duration] = []

    /// The per-job VM CPU's percentiles, measured by the worker for each VM alone (its VMM's rusage),
    /// so unlike the host-wide split it does not move with what else the host runs.
    var vmCPUSummary: String {
        guard !vmCPU.isEmpty else { return "VM host CPU per job (host_cpu_ms): not reported" }
        let sample = WorkerBenchmarkSample(vmCPU)
        return String(format: "VM host CPU per job (host_cpu_ms): p50 %.0f ms  p95 %.0f ms  (n=%d)", sample.percentile(50), sample.percentile(95), vmCPU.count)
    }
}
