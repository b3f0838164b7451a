import Foundation
import TestSupport
import Testing

@testable import Worker

@Suite("Worker concurrency and drain", .serialized)
struct ConcurrencyAndDrainTests {
    @Test("10 jobs pushed at once with concurrency 2 all finish, never more than 2 VMs at once")
    func tenJobsTwoSlots() async throws {
        try await WorkerHarness.with(configure: { $0.concurrency = 2 }) { harness in
            let ids = (1...10).map { "c\($0)" }
            let payloads = ids.map { #"{"id":"\#($0)","command":"echo \#($0)"}"# }
            _ = try harness.redisCLI(["RPUSH", "jobs"] + payloads)
            // Sample the intake while jobs run: the worker must never hold more than it runs.
            var maximumClaimed = 0
            for id in ids {
                let elements = try await harness.readStatuses(id)
                #expect(elements.prefix(4) == ["received", "running", "done", "\(id)\n"], "job \(id)")
                let processing = try harness.redisCLI("LLEN", "jobs:processing:\(harness.service.workerID)")
                maximumClaimed = max(maximumClaimed, Int(processing.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
            }
            #expect(harness.driver.total == 10)
            #expect(harness.driver.peak == 2, "peak live VMs \(harness.driver.peak)")
            #expect(maximumClaimed <= 2, "processing list held \(maximumClaimed) jobs")
        }
    }

    @Test("graceful shutdown lets the job in flight finish, then the service returns")
    func drainFinishesJob() async throws {
        try await WorkerHarness.with(configure: { $0.drainGracePeriod = .seconds(30) }) { harness in
            try harness.push(#"{"id":"d1","command":"sleep 1; echo finished"}"#)
            // Shut down once the job is in its VM.
            let started = try await eventually(timeout: .seconds(30)) {
                try harness.redisCLI("LRANGE", "d1", "0", "-1").contains("running")
            }
            try #require(started, "job d1 never reported running")
            let error = await harness.stopWorker()
            #expect(error == nil, "the service threw \(String(describing: error))")
            // The service has returned; the job's terminal status was published before it did.
            let elements = try await harness.readStatuses("d1", timeout: 1)
            #expect(elements.prefix(4) == ["received", "running", "done", "finished\n"])
            #expect(harness.driver.live == 0)
            #expect(try harness.redisCLI("LLEN", "jobs").hasPrefix("0"))
        }
    }

    @Test("past the grace period the VM is destroyed and the job goes back to the intake")
    func drainRequeues() async throws {
        try await WorkerHarness.with(configure: { $0.drainGracePeriod = .milliseconds(300) }) { harness in
            let payload = #"{"id":"long","command":"sleep 20"}"#
            try harness.push(payload)
            let started = try await eventually(timeout: .seconds(30)) {
                try harness.redisCLI("LRANGE", "long", "0", "-1").contains("running")
            }
            try #require(started, "job long never reported running")
            let error = await harness.stopWorker()
            #expect(error == nil, "the service threw \(String(describing: error))")
            #expect(harness.driver.live == 0)
            #expect(try harness.redisCLI("LRANGE", "jobs", "0", "-1") == payload + "\n")
            #expect(try harness.redisCLI("LRANGE", "long", "0", "-1") == "received\nrunning\n")
        }
    }
}
