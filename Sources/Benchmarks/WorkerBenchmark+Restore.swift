import AgentProtocol
import Foundation
import Worker

extension WorkerBenchmark {
    /// `true` through the worker with each QEMU restore mode, side by side in one run: latency one job at
    /// a time, host CPU per job, and throughput with 4 VMs; jailed (the worker's default) and unjailed.
    /// Each mode's snapshot exists before its series is timed.
    func restoreModes(base: WorkerConfiguration, platform: WorkerBenchmarkPlatform) async throws {
        output("\nrestore modes, `true` through the worker")
        let payload = Self.workloads[0].payload
        let runs = [true, false].flatMap { jailed in [WorkerConfiguration.QEMURestoreChoice.streamed, .copyOnWrite].map { (jailed, $0) } }
        for (jailed, mode) in runs {
            var configuration = base
            configuration.qemuJail = jailed
            configuration.qemuRestore = mode
            configuration.concurrency = 1
            let driver = WorkerBenchmarkTimingDriver(try await DriverSelection.makeDriver(for: configuration, logger: logger))
            let label = (mode.rawValue + (jailed ? ", jailed" : ", unjailed")).padding(toLength: 24, withPad: " ", startingAt: 0)
            // Untimed: the mode's snapshot (a template boot, seconds of CPU) is made before the series,
            // so that its latency and CPU figures are of restores only, whichever series came first.
            _ = try await driver.withVM(configuration.vmConfiguration(network: false), logger: logger) { session in
                try await session.run(RunRequest(id: "restore-snapshot-\(jailed ? "j" : "u")-\(mode.rawValue)", workload: .shell(command: "true")), timeout: .seconds(120))
            }
            _ = driver.takeSpans()
            let cpuStart = CPUSplit.now(redisPID: platform.redisPID)
            let series = try await withWorker(configuration, driver: driver) { _ in
                try await oneAtATime(platform, ids: "restore-\(jailed ? "j" : "u")-\(mode.rawValue)", payload: payload)
            }
            let latencies = series.latencies
            let cpuPerJob = CPUSplit.now(redisPID: platform.redisPID).perJob(since: cpuStart, jobs: latencies.count)
            _ = driver.takeSpans()

            configuration.concurrency = 4
            let (rate, batchCPU) = try await batch(configuration, driver: driver, platform: platform, ids: "restore-tp-\(jailed ? "j" : "u")-\(mode.rawValue)")
            output("  \(label) one at a time \(WorkerBenchmarkSample(latencies).summary)")
            output("  \(label) host CPU per job \(cpuPerJob)")
            output("  \(label) \(series.vmCPUSummary)")
            output(String(format: "  %@ 4 VMs: %.2f jobs/s, host CPU per job %.0f ms", label, rate, batchCPU))
        }
    }
}
