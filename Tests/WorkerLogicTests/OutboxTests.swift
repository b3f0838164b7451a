import JobQueue
import TestSupport
import Testing

@testable import Worker

/// The outbox while the queue is away: what it keeps, in which order, and what it publishes once back.
@Suite("Outbox")
struct OutboxTests {
    /// Two claimed jobs on a fresh queue.
    func claimTwo(_ queue: InMemoryJobQueue) async throws -> (ClaimedJob, ClaimedJob) {
        (try await WorkerFixtures.claim(#"{"id":"a","command":"true"}"#, from: queue),
         try await WorkerFixtures.claim(#"{"id":"b","command":"true"}"#, from: queue))
    }

    static let done = JobOutcome.done(stdout: Array("out".utf8), stderr: [], result: JobResultRecord(verdict: "ok"))

    @Test("during an outage statuses are kept in order, and published once, in that order, when the queue is back")
    func outageKeepsOrder() async throws {
        let queue = InMemoryJobQueue()
        let (a, b) = try await claimTwo(queue)
        let outbox = Outbox(
            queue: queue, capacity: 100, retry: Backoff(initial: .milliseconds(5), maximum: .milliseconds(20)),
            logger: WorkerFixtures.logger)
        let retrying = Task { await outbox.run() }
        defer { retrying.cancel() }

        await queue.setReachable(false)
        await outbox.submit(.status(.received, a), logger: WorkerFixtures.logger)
        await outbox.submit(.status(.running, a), logger: WorkerFixtures.logger)
        await outbox.submit(.status(.received, b), logger: WorkerFixtures.logger)
        await outbox.submit(.finish(a, Self.done), logger: WorkerFixtures.logger)
        #expect(await outbox.count == 4)
        #expect(await queue.writes.isEmpty)

        await queue.setReachable(true)
        // Written as the queue comes back, maybe while older writes still wait: it must not go before them.
        await outbox.submit(.finish(b, .failed(reason: "VM failure: gone", result: nil)), logger: WorkerFixtures.logger)
        let flushed = await eventually(timeout: .seconds(5), every: .milliseconds(5)) { await outbox.count == 0 }
        #expect(flushed)
        #expect(await queue.writes == ["a received", "a running", "b received", "a done", "b failed"])
        #expect(await queue.statusLists["a"]?.prefix(4) == ["received", "running", "done", "out"])
        #expect(await queue.processing.isEmpty)
    }

    @Test("a full outbox keeps the oldest writes and drops the newest")
    func boundedKeepsOldest() async throws {
        let queue = InMemoryJobQueue()
        let (a, b) = try await claimTwo(queue)
        let outbox = Outbox(queue: queue, capacity: 2, logger: WorkerFixtures.logger)
        await queue.setReachable(false)
        await outbox.submit(.status(.received, a), logger: WorkerFixtures.logger)
        await outbox.submit(.finish(a, Self.done), logger: WorkerFixtures.logger)
        await outbox.submit(.status(.received, b), logger: WorkerFixtures.logger)
        #expect(await outbox.count == 2)
        #expect(await outbox.droppedCount == 1)

        await queue.setReachable(true)
        #expect(await outbox.flush(before: .now + .seconds(5)))
        #expect(await queue.writes == ["a received", "a done"])
        // The job whose write was dropped is still held by the queue, so it is not lost.
        #expect(await queue.processing == [b.payload])
    }

    @Test("shutting down with the queue still away reports the writes that could not go out")
    func flushGivesUp() async throws {
        let queue = InMemoryJobQueue()
        let (a, _) = try await claimTwo(queue)
        let outbox = Outbox(queue: queue, capacity: 10, logger: WorkerFixtures.logger)
        await queue.setReachable(false)
        await outbox.submit(.finish(a, Self.done), logger: WorkerFixtures.logger)
        #expect(await outbox.flush(before: .now + .milliseconds(50)) == false)
        #expect(await outbox.count == 1)
        #expect(await queue.writes.isEmpty)
    }
}
