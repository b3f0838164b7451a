import AgentProtocol
import Foundation
import JobQueue
import Synchronization
import Testing

@testable import Worker

/// The bounded hand-over between a streamed run's agent channel and Redis: a guest that floods output
/// cannot grow the worker's memory, and the stream says where output was dropped.
@Suite("Output chunk queue")
struct OutputChunkQueueTests {
    @Test func aFloodWithNobodyTakingStaysWithinTheCapacityAndIsCounted() {
        let queue = OutputChunkQueue(capacityBytes: 64 << 10)
        let chunk = [UInt8](repeating: 0x79, count: 4096)
        var accepted = 0
        // 100 MiB offered, in chunks of every size from 1 byte: a hostile guest's flood.
        var offered = 0
        var size = 1
        while offered < 100 << 20 {
            let count = min(size, chunk.count)
            if queue.offer(.stdout, chunk[0..<count]) { accepted += count }
            offered += count
            size = size % 4096 + 1
            #expect(queue.queuedBytes <= queue.capacityBytes + 2 * OutputChunkQueue.pieceOverheadBytes)
        }
        #expect(accepted > 0 && accepted <= 64 << 10)
        #expect(queue.droppedBytes == offered - accepted)
    }

    @Test func takesPiecesInOrderCoalescedWithTheDropMarkedWhereItHappened() async {
        let queue = OutputChunkQueue(capacityBytes: 1000)
        #expect(queue.offer(.stdout, Array("ab".utf8)))
        #expect(queue.offer(.stdout, Array("cd".utf8)))
        #expect(queue.offer(.stderr, Array("e".utf8)))
        #expect(!queue.offer(.stdout, [UInt8](repeating: 0x41, count: 2000)))
        #expect(!queue.offer(.stdout, [UInt8](repeating: 0x41, count: 5000)))
        queue.note("hello")
        #expect(queue.offer(.stdout, Array("f".utf8)))
        queue.finish()
        #expect(!queue.offer(.stdout, Array("late".utf8)))
        let pieces = await queue.next()
        #expect(pieces == [
            .output(.stdout, Array("abcd".utf8)), .output(.stderr, Array("e".utf8)), .dropped(.stdout, bytes: 7000),
            .notice("hello"), .output(.stdout, Array("f".utf8)),
        ])
        #expect(await queue.next() == nil)
    }

    @Test func aWaitingTakerWakesForTheFirstChunkAndForTheEnd() async {
        let queue = OutputChunkQueue(capacityBytes: 1000)
        let taker = Task { () -> [[OutputChunkQueue.Piece]] in
            var batches: [[OutputChunkQueue.Piece]] = []
            while let batch = await queue.next() { batches.append(batch) }
            return batches
        }
        queue.offer(.stderr, Array("x".utf8))
        queue.finish()
        let batches = await taker.value
        #expect(batches.flatMap { $0 } == [.output(.stderr, Array("x".utf8))])
    }

    @Test func thePublisherNumbersEntriesFromZeroAndEndsWithTheStatus() async throws {
        let backend = RecordingOutputBackend()
        let publisher = OutputPublisher(
            id: "job", backend: backend, configuration: .init(bufferBytes: 10_000), logger: WorkerFixtures.logger)
        let handler = publisher.handler
        handler(OutputChunk(id: "job", stream: .stdout, offset: 0, data: Data("one\n".utf8)))
        publisher.note("a notice")
        handler(OutputChunk(id: "job", stream: .stderr, offset: 0, data: Data("err".utf8)))
        await publisher.finish(.done)
        let entries = backend.entries["job"] ?? []
        #expect(entries.map(\.sequence) == Array(0..<entries.count))
        #expect(entries.last == OutputStreamEntry(kind: .end, sequence: entries.count - 1, data: Array("done".utf8)))
        #expect(entries.filter { $0.kind == .stdout }.flatMap(\.data) == Array("one\n".utf8))
        #expect(entries.filter { $0.kind == .stderr }.flatMap(\.data) == Array("err".utf8))
        #expect(entries.contains(OutputStreamEntry(kind: .notice, sequence: 1, data: Array("a notice".utf8))))
    }
}

/// Keeps what a publisher appends, per job id.
final class RecordingOutputBackend: JobQueueBackend {
    private let state = Mutex([String: [OutputStreamEntry]]())
    var entries: [String: [OutputStreamEntry]] { state.withLock { $0 } }

    func appendOutput(_ entries: [OutputStreamEntry], for id: String) async throws {
        state.withLock { $0[id, default: []] += entries }
    }

    func claim(timeout: Duration) async throws -> ClaimedJob? { nil }
    func publish(_ status: JobStatus, for claimed: ClaimedJob) async throws -> Bool { false }
    func finish(_ claimed: ClaimedJob, outcome: JobOutcome) async throws -> Bool { false }
    func rejectInvalid(_ claimed: ClaimedJob, _ invalid: InvalidJob) async throws -> Bool { false }
    func requeue(_ claimed: ClaimedJob) async throws -> Bool { false }
    func requeueOrphans(holding held: [[UInt8]]) async throws -> Int { 0 }
    func runMaintenance() async {}
    func shutdown() async throws -> Int { 0 }
}
