import Foundation
import TestSupport
import Testing

@testable import Worker

/// Cancelling jobs through a real worker, real VMs and a real redis-server, with the platform's own commands
/// (docs/wire-contract.md, "Cancelling a job").
@Suite("Cancelling jobs", .serialized)
struct CancelJobTests {
    /// What a platform runs: the durable mark, then the PUBLISH that reaches running jobs at once.
    private func cancel(_ id: String, _ harness: WorkerHarness) throws {
        #expect(try harness.redisCLI("SET", "jobs:cancel:\(id)", "1", "EX", "600").hasPrefix("OK"))
        _ = try harness.redisCLI("PUBLISH", "jobs:cancel", id)
    }

    /// The QEMUs under `directory` that are jobs' VMs: every one but the parked standbys.
    private func jobVMs(_ directory: String, _ harness: WorkerHarness) -> [Int32] {
        let standbys = harness.driver.standbyPIDs
        return VMProcessCensus.take(runtimeDirectory: directory).vmmChildren.filter { !standbys.contains($0) }
    }

    private func runtimeDirectory() -> String {
        NSTemporaryDirectory() + "cancel-rt-\(UUID().uuidString.prefix(8))"
    }

    private func waitUntilRunning(_ id: String, _ harness: WorkerHarness) async throws {
        let running = try await eventually(timeout: .seconds(60)) {
            try harness.redisCLI("LRANGE", id, "0", "-1").contains("running")
        }
        try #require(running, "job \(id) never reported running")
    }

    @Test("a job cancelled while queued never runs: no VM, no received, one failed + cancelled; the next job runs")
    func queuedJobNeverRuns() async throws {
        let directory = runtimeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await WorkerHarness.with(configure: { $0.runtimeDirectory = directory }) { harness in
            try harness.push(#"{"id":"busy","command":"sleep 2; echo busy"}"#)
            try await waitUntilRunning("busy", harness)
            try harness.push(#"{"id":"queued","command":"echo must-not-run"}"#)
            try cancel("queued", harness)
            try harness.push(#"{"id":"after","command":"echo after"}"#)

            #expect(try await harness.readStatuses("busy").prefix(4) == ["received", "running", "done", "busy\n"])
            let cancelled = try await harness.readStatuses("queued")
            #expect(Array(cancelled.prefix(2)) == ["failed", "cancelled"])
            #expect(cancelled.count == 3)
            #expect(WorkerHarness.result(cancelled)["verdict"] as? String == "cancelled")
            #expect(try await harness.readStatuses("after").prefix(4) == ["received", "running", "done", "after\n"])
            #expect(harness.driver.total == 2, "VMs booted: \(harness.driver.total); the cancelled job must not boot one")
            #expect(try harness.redisCLI("EXISTS", "jobs:cancel:queued").hasPrefix("0"), "the honoured mark is gone")
        }
    }

    @Test("a running sleep 100 is cancelled: its VM is gone within a second, one terminal failed + cancelled")
    func runningJobIsStopped() async throws {
        let directory = runtimeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await WorkerHarness.with(configure: { $0.runtimeDirectory = directory }) { harness in
            try harness.push(#"{"id":"long","command":"sleep 100"}"#)
            try await waitUntilRunning("long", harness)
            #expect(!jobVMs(directory, harness).isEmpty, "the job's QEMU runs")

            try cancel("long", harness)
            let clock = ContinuousClock()
            let published = clock.now
            let gone = await eventually(timeout: .seconds(1), every: .milliseconds(10)) {
                jobVMs(directory, harness).isEmpty && harness.driver.live == 0
            }
            let took = clock.now - published
            #expect(gone, "VM still there 1 s after the cancel: \(VMProcessCensus.take(runtimeDirectory: directory))")
            print("cancel to VM gone: \(took)")

            let elements = try await harness.readStatuses("long")
            #expect(Array(elements.prefix(4)) == ["received", "running", "failed", "cancelled"])
            #expect(WorkerHarness.result(elements)["verdict"] as? String == "cancelled")
            // Exactly one terminal status: nothing more comes, even for a second cancel of the finished job.
            try cancel("long", harness)
            try harness.push(#"{"id":"next","command":"echo next"}"#)
            #expect(try await harness.readStatuses("next").prefix(4) == ["received", "running", "done", "next\n"])
            #expect(try harness.redisCLI("LLEN", "long").hasPrefix("0"), "something was pushed after the terminal status")
            // The standby spawned for the job after `next` may still be on its way to being parked.
            #expect(await eventually(timeout: .seconds(5)) { jobVMs(directory, harness).isEmpty })
        }
    }

    @Test("a cancel whose PUBLISH the worker missed is honoured when its subscription comes back after a Redis restart")
    func missedPublishIsReadAfterRestart() async throws {
        let directory = runtimeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await WorkerHarness.with(
            redisOptions: RedisServerOptions(appendOnly: true),
            configure: {
                $0.runtimeDirectory = directory
                $0.heartbeatTTL = .seconds(10)
            }
        ) { harness in
            try harness.push(#"{"id":"missed","command":"sleep 100"}"#)
            try await waitUntilRunning("missed", harness)
            // Only the durable half: as if the PUBLISH had gone out while the worker's subscription was down.
            #expect(try harness.redisCLI("SET", "jobs:cancel:missed", "1", "EX", "600").hasPrefix("OK"))
            try await Task.sleep(for: .milliseconds(500))
            #expect(harness.driver.live == 1, "without a PUBLISH and without a resubscription nothing cancels the job")
            await harness.redis.kill()
            try await harness.redis.restart()
            let elements = try await harness.readStatuses("missed", timeout: 30)
            #expect(Array(elements.suffix(3).prefix(2)) == ["failed", "cancelled"], "\(elements)")
            #expect(elements.count { $0 == "failed" || $0 == "done" } == 1)
            #expect(await eventually(timeout: .seconds(5)) { jobVMs(directory, harness).isEmpty })
            // The worker goes on after the outage.
            try harness.push(#"{"id":"then","command":"echo then"}"#)
            #expect(try await harness.readStatuses("then", timeout: 30).prefix(4) == ["received", "running", "done", "then\n"])
        }
    }

    @Test("the commands: submit --queue onto jobs:high, then codebench-worker cancel stops it; submit reports failed")
    func commands() async throws {
        try await WorkerHarness.with(configure: { $0.intakeLists = ["jobs:high", "jobs"] }) { harness in
            let cli = SubmitCommandTests()
            let submitting = Task {
                try await cli.codebenchWorker([
                    "submit", "--redis-url", harness.redis.url, "--queue", "jobs:high", "--id", "via-cli", "--", "sleep", "100",
                ])
            }
            // submit pops the status list as it reads it, so wait for the VM instead.
            let booted = await eventually(timeout: .seconds(60)) { harness.driver.live == 1 }
            try #require(booted, "the submitted job never got its VM")
            let (status, output) = try await cli.codebenchWorker([
                "cancel", "--redis-url", harness.redis.url, "--ttl-seconds", "120", "via-cli",
            ])
            #expect(status == 0, "\(output)")
            #expect(output.contains("cancel of job via-cli requested; 1 worker(s) listening"), "\(output)")
            let (submitStatus, submitOutput) = try await submitting.value
            #expect(submitOutput.contains("pushed job via-cli onto jobs:high"), "\(submitOutput)")
            #expect(submitStatus == 2, "a failed job exits 2: \(submitOutput)")
            #expect(submitOutput.contains("cancelled"), "\(submitOutput)")
            #expect(harness.driver.live == 0)
        }
    }

    @Test("cancelling an unknown id is harmless: the worker goes on and runs the next job")
    func unknownIDIsHarmless() async throws {
        try await WorkerHarness.with { harness in
            try cancel("nobody", harness)
            _ = try harness.redisCLI("PUBLISH", "jobs:cancel", String(repeating: "x", count: 10_000))
            try harness.push(#"{"id":"fine","command":"echo fine"}"#)
            #expect(try await harness.readStatuses("fine").prefix(4) == ["received", "running", "done", "fine\n"])
            #expect(try harness.redisCLI("LLEN", "nobody").hasPrefix("0"), "a status list was written for an unknown id")
            let ttl = Int(try harness.redisCLI("TTL", "jobs:cancel:nobody").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            #expect(ttl > 0, "a cancel mark must expire (TTL \(ttl))")
        }
    }
}
