import JobQueue
import TestSupport
import Testing

@testable import Worker

/// The claim loop takes a job only for a free VM slot: the queue never holds more of this worker's jobs
/// than it runs, so a job waiting in the intake can go to another worker.
@Suite("Slot limits")
struct SlotLimitTests {
    @Test("with 2 slots and 6 jobs, 2 are claimed while they run; all 6 finish, never more than 2 at once")
    func neverMoreThanSlots() async throws {
        let gate = Gate()
        let driver = ScriptedDriver { request in
            try await gate.wait()
            return .ok(for: request, stdout: request.id)
        }
        let queue = InMemoryJobQueue()
        let ids = (1...6).map { "s\($0)" }
        for id in ids { await queue.push(#"{"id":"\#(id)","command":"true"}"#) }
        let worker = RunningWorker(WorkerFixtures.configuration(concurrency: 2), queue: queue, driver: driver)

        #expect(await eventually(timeout: .seconds(5), every: .milliseconds(2)) { driver.live == 2 })
        // Give a claim loop that ignored its slots the time to take more.
        try await Task.sleep(for: .milliseconds(50))
        #expect(await queue.processing.count == 2)
        #expect(await queue.intake.count == 4)

        gate.open()
        let finished = await eventually(timeout: .seconds(5), every: .milliseconds(2)) { await queue.outcomes.count == 6 }
        #expect(finished)
        await worker.stop()
        for id in ids {
            #expect(await queue.statusLists[id]?.prefix(4) == ["received", "running", "done", id], "job \(id)")
        }
        #expect(await queue.peakProcessing == 2)
        #expect(driver.peak == 2)
        #expect(driver.total == 6)
    }

    @Test("a claim whose reply was lost is given back once the queue is reachable again, and runs exactly once")
    func lostClaimReplyRecovered() async throws {
        let driver = ScriptedDriver()
        let queue = InMemoryJobQueue()
        await queue.loseTheNextClaimReply()
        await queue.push(#"{"id":"orphan","command":"true"}"#)
        let worker = RunningWorker(WorkerFixtures.configuration(concurrency: 1), queue: queue, driver: driver)
        let finished = await eventually(timeout: .seconds(5), every: .milliseconds(5)) { await queue.outcomes["orphan"] != nil }
        await worker.stop()
        #expect(finished, "the orphaned job was never run")
        #expect(await queue.writes.filter { $0.hasPrefix("orphan ") } == ["orphan received", "orphan running", "orphan done"])
        #expect(driver.total == 1)
        #expect(await queue.processing.isEmpty)
    }
}
