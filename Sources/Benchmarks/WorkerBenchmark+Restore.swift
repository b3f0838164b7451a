import Foundation
import Worker

extension WorkerBenchmark {
    /// `true` through the worker with each QEMU restore mode, side by side in one run: latency one job at
    /// a time, host CPU per job, and throughput with 4 VMs. Unjailed, because QEMU 7.2 can map the
    /// template's memory file only outside the jail (docs/snapshots.md); both modes run unjailed here so
    /// that the mode is the only difference.
    func restoreModes(base: WorkerConfiguration, platform: WorkerBenchmarkPlatform) async throws {
        output("\nrestore modes, `true` through the worker, qemu-jail=off for both (copy-on-write needs it on QEMU 7.2)")
        let payload = Self.workloads[0].payload
        for mode in [WorkerConfiguration.QEMURestoreChoice.streamed, .copyOnWrite] {
            var configuration = base
            configuration.qemuJail = false
            configuration.qemuRestore = mode
            configuration.concurrency = 1
            let driver = WorkerBenchmarkTimingDriver(try await DriverSelection.makeDriver(for: configuration, logger: logger))
            let label = mode.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)
            let cpuStart = HostCPU.now()
            let latencies = try await withWorker(configuration, driver: driver) { _ in
                try await oneAtATime(platform, ids: "restore-\(mode.rawValue)", payload: payload)
            }
            let cpuPerJob = HostCPU.millisecondsPerJob(since: cpuStart, jobs: latencies.count)
            _ = driver.takeSpans()

            configuration.concurrency = 4
            let (rate, batchCPU) = try await batch(configuration, driver: driver, platform: platform, ids: "restore-tp-\(mode.rawValue)")
            output("  \(label) one at a time \(WorkerBenchmarkSample(latencies).summary)")
            output(String(format: "  %@ host CPU per job %.0f ms; 4 VMs: %.2f jobs/s, host CPU per job %.0f ms", label, cpuPerJob, rate, batchCPU))
        }
    }
}
