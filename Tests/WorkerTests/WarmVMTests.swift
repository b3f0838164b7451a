import Foundation
import Observability
import Prometheus
import TestSupport
import Testing

@testable import Worker

/// `warm-vms`: VMs booted ahead of jobs, through the whole worker (real redis-server, real VMs).
@Suite("Warm VMs", .serialized)
struct WarmVMTests {
    @Test("jobs start on VMs booted ahead of them, metrics count them, and a graceful stop destroys the parked ones")
    func jobsStartOnWarmVMs() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusBackend.factory(registry: registry, timerBuckets: WorkerMetricNames.timerBuckets)
        func metrics() -> String { String(decoding: registry.emitToBuffer(), as: UTF8.self) }
        try await WorkerHarness.with(configure: { $0.warmVMs = 1 }, metricsFactory: factory) { harness in
            for id in ["w1", "w2"] {
                #expect(await eventually(timeout: .seconds(60)) { harness.service.warmIdle == 1 }, "a VM is parked before \(id) arrives")
                try harness.push(#"{"id":"\#(id)","command":"echo warm"}"#)
                let elements = try await harness.readStatuses(id)
                #expect(elements.prefix(4) == ["received", "running", "done", "warm\n"])
                // The job waited for the hand-off only (no await in it), not for the parked VM's boot.
                let result = elements.count > 5 ? try JSONSerialization.jsonObject(with: Data(elements[5].utf8)) as? [String: Any] : nil
                let bootMilliseconds = try #require(result?["boot_ms"] as? Int, "\(elements)")
                #expect(bootMilliseconds < 100, "boot_ms \(bootMilliseconds) on a warm VM")
                // A warm VM's cost reaches its job's result: its boot and priming included.
                #expect((result?["host_cpu_ms"] as? Int ?? 0) > 20, "\(elements)")
            }
            #expect(harness.service.warmStarts == 2)
            #expect(metrics().contains("codebench_worker_warm_starts_total 2\n"), "\(metrics())")
            #expect(await eventually(timeout: .seconds(60)) { metrics().contains("codebench_worker_vms_warm 1.0\n") }, "\(metrics())")
            #expect(await harness.stopWorker() == nil)
            #expect(harness.driver.live == 0, "the parked VM was destroyed on stop")
            #expect(harness.service.warmIdle == 0)
            #expect(metrics().contains("codebench_worker_vms_warm 0.0\n"), "\(metrics())")
        }
    }

    @Test("warm-vms is a setting, bounded")
    func setting() throws {
        var configuration = try WorkerConfigurationLoader(flags: ["warm-vms": "2"], environment: [:]).load()
        #expect(configuration.warmVMs == 2)
        // Its VMs' template prepares a job for the priming and one for the job; without warm VMs, one.
        #expect(configuration.vmConfiguration(network: false).snapshotPreparedJobs == 2)
        #expect(try WorkerConfigurationLoader(flags: [:], environment: [:]).load().vmConfiguration(network: false).snapshotPreparedJobs == 1)
        configuration.warmVMs = 65
        #expect(throws: WorkerConfigurationError.self) { try configuration.validate() }
    }

    @Test("warm-interpreters is a setting, on by default, and goes into the VMs' template")
    func warmInterpretersSetting() throws {
        let defaults = try WorkerConfigurationLoader(flags: [:], environment: [:]).load()
        #expect(defaults.warmInterpreters && defaults.vmConfiguration(network: false).snapshotForkServers)
        let off = try WorkerConfigurationLoader(flags: ["warm-interpreters": "false"], environment: [:]).load()
        #expect(!off.warmInterpreters && !off.vmConfiguration(network: false).snapshotForkServers)
        #expect(throws: (any Error).self) { try WorkerConfigurationLoader(flags: ["warm-interpreters": "maybe"], environment: [:]).load() }
    }
}
