import Foundation
import RedisClient
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Never lose a job: workers die for real (separate processes), Redis restarts.
@Suite("Worker never loses a job", .serialized)
struct ReliabilityTests {
    /// A redis-server, a platform-side client, a private runtime dir, and every worker process
    /// started through it, all cleaned up even when the test fails.
    final class Fleet: Sendable {
        let redis: RedisServer
        let client: RedisClient
        let runtimeDirectory: String
        private let started = Mutex<[WorkerProcess]>([])

        init(appendOnly: Bool = false) async throws {
            _ = try GuestImageFixture.require()
            redis = try await RedisServer.start(RedisServerOptions(appendOnly: appendOnly))
            client = RedisClient(configuration: try .init(url: redis.url), logger: WorkerHarness.logger)
            runtimeDirectory = NSTemporaryDirectory() + "/worker-rt-\(UUID().uuidString.prefix(8))"
        }

        func worker(_ id: String, settings: [String: String] = [:]) throws -> WorkerProcess {
            let worker = try WorkerProcess(
                redisURL: redis.url, workerID: id, runtimeDirectory: runtimeDirectory, settings: settings)
            started.withLock { $0.append(worker) }
            return worker
        }

        func push(_ payload: String) async throws {
            _ = try await client.send(RedisCommand("RPUSH", "jobs", payload))
        }

        func list(_ key: String) async throws -> [String] {
            try await client.send(RedisCommand("LRANGE", key, 0, -1), as: [String].self)
        }

        /// Polls `key` until `predicate` holds on its elements (or fails the test after `timeout`).
        func waitFor(_ key: String, timeout: Duration = .seconds(60), _ predicate: ([String]) -> Bool) async throws -> [String] {
            let deadline = ContinuousClock.now + timeout
            var elements: [String] = []
            while ContinuousClock.now < deadline {
                elements = try await list(key)
                if predicate(elements) { return elements }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting on \(key); it holds \(elements)")
            return elements
        }

        /// Kills whatever is left, prints worker logs when the test failed, removes everything.
        func tearDown(showLogs: Bool) async {
            for worker in started.withLock({ $0 }) {
                await worker.kill()
                if showLogs { print("--- log of worker \(worker.workerID) ---\n\(worker.log.suffix(6000))") }
                worker.removeLog()
            }
            for pid in qemuProcesses(using: runtimeDirectory) { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: runtimeDirectory)
            client.close()
            await redis.stop()
        }

        static func with(appendOnly: Bool = false, _ body: (Fleet) async throws -> Void) async throws {
            let fleet = try await Fleet(appendOnly: appendOnly)
            do {
                try await body(fleet)
                await fleet.tearDown(showLogs: false)
            } catch {
                await fleet.tearDown(showLogs: true)
                throw error
            }
        }
    }

    static func terminalCount(_ elements: [String]) -> Int {
        elements.filter { $0 == "done" || $0 == "failed" }.count
    }

    @Test("a worker SIGKILLed mid-job: another worker process runs the job, which gets one terminal status")
    func sigkillMidJob() async throws {
        try await Fleet.with { fleet in
            let first = try fleet.worker("first")
            try await fleet.push(#"{"id":"k1","command":"sleep 2; echo survived"}"#)
            _ = try await fleet.waitFor("k1") { $0.contains("running") }
            // The job's VM and the first worker's standby QEMU.
            let orphans = qemuProcesses(using: fleet.runtimeDirectory)
            #expect(!orphans.isEmpty, "the job's VM runs")
            await first.kill()
            let second = try fleet.worker("second")
            let elements = try await fleet.waitFor("k1") { $0.contains("done") || $0.contains("failed") }
            try await Task.sleep(for: .seconds(1))  // anything duplicated would show up by now
            let final = try await fleet.list("k1")
            #expect(Self.terminalCount(final) == 1, "\(final)")
            #expect(elements.contains("survived\n"))
            #expect(final.prefix(4) == ["received", "running", "received", "running"])
            #expect(final.last?.contains(#""attempt":2"#) == true, "\(final.last ?? "")")
            // The first worker's orphaned QEMUs are gone (its parent-death signals, else the second
            // worker's sweeper); the second worker's own standby QEMU may be running meanwhile.
            let swept = await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
                Set(qemuProcesses(using: fleet.runtimeDirectory)).isDisjoint(with: orphans)
            }
            #expect(swept, "QEMU processes of the killed worker left: \(Set(qemuProcesses(using: fleet.runtimeDirectory)).intersection(orphans))")
            second.signal(SIGTERM)
            #expect(await second.waitForExit() == 0)
            #expect(qemuProcesses(using: fleet.runtimeDirectory).isEmpty, "a stopped worker leaves no QEMU, standby or not")
        }
    }

    @Test("a worker SIGKILLed mid-job leaves no QEMU running 2 s later, with no other worker to sweep")
    func sigkillLeavesNoQEMU() async throws {
        try await Fleet.with { fleet in
            let worker = try fleet.worker("doomed")
            try await fleet.push(#"{"id":"k2","command":"sleep 30"}"#)
            _ = try await fleet.waitFor("k2") { $0.contains("running") }
            #expect(!qemuProcesses(using: fleet.runtimeDirectory).isEmpty, "the job's VM runs")
            await worker.kill()
            try await Task.sleep(for: .seconds(2))
            // The parent-death signals and the PID namespace took the VM down; nobody swept it.
            #expect(qemuProcesses(using: fleet.runtimeDirectory).isEmpty, "\(qemuProcesses(using: fleet.runtimeDirectory))")
            let jailed = (try? runShell("ps -eo uid=,comm= | awk '$1 >= 64000 && $1 <= 64999 && $2 ~ /^qemu/' | wc -l")) ?? "?"
            #expect(jailed == "0", "QEMUs still running as a jail uid: \(jailed)")
        }
    }

    @Test("SIGTERM with a long job and a short grace: the job goes back to the queue and a second worker completes it")
    func sigtermRequeues() async throws {
        try await Fleet.with { fleet in
            let first = try fleet.worker("first", settings: ["drain-grace-seconds": "0.5"])
            let payload = #"{"id":"g1","command":"sleep 3; echo second"}"#
            try await fleet.push(payload)
            _ = try await fleet.waitFor("g1") { $0.contains("running") }
            first.signal(SIGTERM)
            #expect(await first.waitForExit(timeout: .seconds(20)) == 0)
            #expect(try await fleet.list("jobs") == [payload])
            #expect(qemuProcesses(using: fleet.runtimeDirectory).isEmpty)
            let second = try fleet.worker("second")
            let elements = try await fleet.waitFor("g1") { $0.contains("done") || $0.contains("failed") }
            #expect(elements.prefix(6) == ["received", "running", "received", "running", "done", "second\n"])
            second.signal(SIGTERM)
            #expect(await second.waitForExit() == 0)
        }
    }

    @Test("a poison job that kills every worker is dead-lettered after 3 deliveries")
    func poisonJob() async throws {
        try await Fleet.with { fleet in
            let payload = #"{"id":"poison","command":"sleep 30"}"#
            try await fleet.push(payload)
            for delivery in 1...3 {
                let worker = try fleet.worker("victim-\(delivery)")
                _ = try await fleet.waitFor("poison") { $0.filter { $0 == "running" }.count == delivery }
                await worker.kill()
            }
            let reaper = try fleet.worker("reaper")
            let elements = try await fleet.waitFor("poison") { $0.contains("failed") }
            #expect(elements.filter { $0 == "running" }.count == 3)
            let failed = try #require(elements.firstIndex(of: "failed"))
            #expect(elements[failed + 1] == "abandoned after 3 attempts")
            #expect(try await fleet.list("jobs:dead") == [payload])
            #expect(try await fleet.list("jobs").isEmpty)
            reaper.signal(SIGTERM)
            #expect(await reaper.waitForExit() == 0)
        }
    }

    @Test("Redis restarted while a job runs: the result arrives after the restart")
    func redisRestart() async throws {
        try await WorkerHarness.with(redisOptions: RedisServerOptions(appendOnly: true), configure: { $0.heartbeatTTL = .seconds(10) }) {
            harness in
            try harness.push(#"{"id":"r1","command":"sleep 2; echo after the outage"}"#)
            let started = try await eventually(timeout: .seconds(30)) {
                try harness.redisCLI("LRANGE", "r1", "0", "-1").contains("running")
            }
            try #require(started, "job r1 never reported running")
            await harness.redis.kill()
            // The job finishes while Redis is down; its result waits in the outbox.
            let finished = await eventually(timeout: .seconds(30)) { harness.driver.live == 0 }
            #expect(finished, "the VM ran to the end during the outage")
            try await harness.redis.restart()
            let elements = try await harness.readStatuses("r1", timeout: 30)
            #expect(elements.prefix(4) == ["received", "running", "done", "after the outage\n"])
            // And the worker still takes new jobs.
            try harness.push(#"{"id":"r2","command":"echo next"}"#)
            let next = try await harness.readStatuses("r2", timeout: 30)
            #expect(next.prefix(4) == ["received", "running", "done", "next\n"])
        }
    }
}
