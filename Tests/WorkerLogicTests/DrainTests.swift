import JobQueue
import TestSupport
import Testing

@testable import Worker

/// Graceful shutdown (what SIGTERM triggers through the ServiceGroup), with scripted VMs.
@Suite("Drain")
struct DrainTests {
    @Test("jobs running at shutdown finish within the grace period; jobs not yet claimed stay in the intake")
    func runningJobsFinish() async throws {
        let gate = Gate()
        let driver = ScriptedDriver { request in
            try await gate.wait()
            return .ok(for: request, stdout: request.id)
        }
        let queue = InMemoryJobQueue()
        await queue.push(#"{"id":"r1","command":"true"}"#, #"{"id":"r2","command":"true"}"#, #"{"id":"waiting","command":"true"}"#)
        let worker = RunningWorker(WorkerFixtures.configuration(concurrency: 2, drainGrace: .seconds(30)), queue: queue, driver: driver)
        #expect(await eventually(timeout: .seconds(5), every: .milliseconds(2)) { driver.live == 2 })

        let stopped = Task { await worker.stop() }
        #expect(await eventually(timeout: .seconds(5), every: .milliseconds(2)) { worker.service.health.state == .draining })
        gate.open()
        let error = await stopped.value
        #expect(error == nil, "the service threw \(String(describing: error))")

        #expect(await queue.statusLists["r1"]?.prefix(4) == ["received", "running", "done", "r1"])
        #expect(await queue.statusLists["r2"]?.prefix(4) == ["received", "running", "done", "r2"])
        #expect(await queue.statusLists["waiting"] == nil)
        #expect(await queue.intake == [Array(#"{"id":"waiting","command":"true"}"#.utf8)])
        #expect(await queue.processing.isEmpty)
        #expect(await queue.didShutDown)
        #expect(driver.live == 0)
    }

    @Test("past the grace period the VM still running is destroyed and its job goes back to the head of the intake")
    func pastGraceRequeues() async throws {
        let quick = Gate()
        let driver = ScriptedDriver { request in
            if request.id == "quick" {
                try await quick.wait()
            } else {
                // Never answers: only cancellation (the end of the grace period) ends it.
                try await Gate().wait()
            }
            return .ok(for: request)
        }
        let queue = InMemoryJobQueue()
        let stuck = #"{"id":"stuck","command":"sleep 999"}"#
        await queue.push(#"{"id":"quick","command":"true"}"#, stuck, #"{"id":"later","command":"true"}"#)
        let worker = RunningWorker(WorkerFixtures.configuration(concurrency: 2, drainGrace: .seconds(1)), queue: queue, driver: driver)
        #expect(await eventually(timeout: .seconds(5), every: .milliseconds(2)) { driver.live == 2 })

        let stopped = Task { await worker.stop() }
        #expect(await eventually(timeout: .seconds(5), every: .milliseconds(2)) { worker.service.health.state == .draining })
        quick.open()
        let error = await stopped.value
        #expect(error == nil, "the service threw \(String(describing: error))")

        #expect(await queue.statusLists["quick"]?.prefix(3) == ["received", "running", "done"])
        #expect(await queue.statusLists["stuck"] == ["received", "running"])
        #expect(await queue.outcomes["stuck"] == nil)
        // Requeued to the head: the next worker runs it before the job that was still waiting.
        #expect(await queue.intake.map { String(decoding: $0, as: UTF8.self) } == [stuck, #"{"id":"later","command":"true"}"#])
        #expect(await queue.processing.isEmpty)
        #expect(driver.live == 0)
    }
}
