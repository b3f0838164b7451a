import AgentProtocol
import JobQueue
import MicroVM
import Testing

@testable import Worker

/// Cancelling through ``JobRunner`` with a scripted guest: when the request arrives decides what the job's list
/// gets, and it always gets exactly one terminal status.
@Suite("Job runner: cancel")
struct CancelRunnerTests {
    @Test("a job whose cancel mark exists when it is claimed gets no VM and no received, only failed + cancelled")
    func markedBeforeClaim() async throws {
        let driver = ScriptedDriver()
        let queue = InMemoryJobQueue()
        var (runner, _) = WorkerFixtures.runner(queue: queue, driver: driver)
        runner.cancelMark = { $0 == "c1" }
        let claimed = try await WorkerFixtures.claim(#"{"id":"c1","command":"true"}"#, from: queue)
        await runner.run(claimed)
        let statuses = await queue.statusLists["c1"] ?? []
        #expect(Array(statuses.prefix(2)) == ["failed", "cancelled"])
        #expect(statuses.count == 3)
        #expect(driver.total == 0)
        guard case .failed(_, let record?)? = await queue.outcomes["c1"] else {
            Issue.record("no failed outcome: \(statuses)")
            return
        }
        #expect(record.verdict == "cancelled")
        #expect(await queue.processing.isEmpty)
    }

    @Test("a running job is stopped by a request on the channel: its VM ends, one failed + cancelled")
    func cancelledWhileRunning() async throws {
        let gate = Gate()
        let driver = ScriptedDriver { request in
            try await gate.wait()
            return .ok(for: request)
        }
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(#"{"id":"c2","command":"sleep 100"}"#, from: queue)
        let running = Task { await runner.run(claimed) }
        #expect(await eventually { driver.requests.count == 1 })
        #expect(runner.running.cancel("c2") == 1)
        await running.value
        #expect(driver.live == 0)
        #expect(await queue.statusLists["c2"]?.prefix(4) == ["received", "running", "failed", "cancelled"])
        #expect(runner.running.ids.isEmpty, "the job is still registered after it ended")
        // Too late to matter: the job is gone, the request finds nothing.
        #expect(runner.running.cancel("c2") == 0)
        #expect(await queue.statusLists["c2"]?.count == 5)
    }

    @Test("a request for another id leaves the running job alone")
    func otherIDUntouched() async throws {
        let gate = Gate()
        let driver = ScriptedDriver { request in
            try await gate.wait()
            return .ok(for: request, stdout: "finished")
        }
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(#"{"id":"c3","command":"true"}"#, from: queue)
        let running = Task { await runner.run(claimed) }
        #expect(await eventually { driver.requests.count == 1 })
        #expect(runner.running.cancel("unknown") == 0)
        gate.open()
        await running.value
        #expect(await queue.statusLists["c3"]?.prefix(4) == ["received", "running", "done", "finished"])
    }
}

/// Polls `condition` for up to 5 s (the scripted guest answers in microseconds; this only catches hangs).
private func eventually(_ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return false
}
