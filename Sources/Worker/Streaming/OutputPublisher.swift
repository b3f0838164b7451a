import AgentProtocol
import JobQueue
import Logging
import MicroVM

/// Publishes a streamed job's output (`"stream": true`) on its Redis stream while the job runs: chunks from
/// the agent go through a bounded ``OutputChunkQueue`` to one task that appends them with
/// ``JobQueueBackend/appendOutput(_:for:)``, numbering the entries from 0; ``finish(_:)`` adds the `end` entry.
///
/// Best effort by design: the terminal status carries the whole output whatever happens here, so a failed
/// append is logged and the next batch goes on (its `seq` shows the gap), and a full buffer drops output
/// with a `notice` entry saying how much, instead of making the agent channel wait.
final class OutputPublisher: Sendable {
    /// How much output one job may have waiting for Redis.
    struct Configuration: Sendable {
        /// Bytes queued between the agent channel and Redis, per job (``OutputChunkQueue/capacityBytes``).
        var bufferBytes = 1 << 20

        init(bufferBytes: Int = 1 << 20) { self.bufferBytes = bufferBytes }
    }

    private let queue: OutputChunkQueue
    private let id: String
    private let backend: any JobQueueBackend
    private let logger: Logger
    /// Appends batches until the queue is finished; returns the next sequence number.
    private let task: Task<Int, Never>

    init(id: String, backend: any JobQueueBackend, configuration: Configuration = Configuration(), logger: Logger) {
        let queue = OutputChunkQueue(capacityBytes: configuration.bufferBytes)
        self.queue = queue
        self.id = id
        self.backend = backend
        self.logger = logger
        task = Task {
            var sequence = 0
            var failures = 0
            while let pieces = await queue.next() {
                let entries = pieces.map { piece in
                    defer { sequence += 1 }
                    return Self.entry(piece, sequence: sequence)
                }
                do {
                    try await backend.appendOutput(entries, for: id)
                } catch {
                    failures += 1
                    if failures == 1 { logger.warning("could not publish streamed output", metadata: ["error": "\(error)"]) }
                }
            }
            return sequence
        }
    }

    /// Hands the agent's chunks to the queue; never waits (it runs on the agent channel's event loop).
    var handler: OutputChunkHandler {
        let queue = self.queue
        return { chunk in queue.offer(chunk.stream, chunk.data) }
    }

    /// Adds a `notice` entry, in order with the output.
    func note(_ text: String) { queue.note(text) }

    /// Publishes what is still queued, then the `end` entry carrying the terminal status.
    func finish(_ status: JobStatus) async {
        queue.finish()
        let sequence = await task.value
        do {
            try await backend.appendOutput([OutputStreamEntry(kind: .end, sequence: sequence, data: Array(status.rawValue.utf8))], for: id)
        } catch {
            logger.warning("could not publish the end of the streamed output", metadata: ["error": "\(error)"])
        }
        if queue.droppedBytes > 0 {
            logger.notice("streamed output dropped: Redis was slower than the job", metadata: ["dropped_bytes": "\(queue.droppedBytes)"])
        }
    }

    /// The job goes back to the queue (drain): stop without an `end`; the next run's entries follow.
    func abandon() {
        queue.finish()
    }

    private static func entry(_ piece: OutputChunkQueue.Piece, sequence: Int) -> OutputStreamEntry {
        switch piece {
        case .output(let stream, let bytes):
            return OutputStreamEntry(kind: stream == .stdout ? .stdout : .stderr, sequence: sequence, data: bytes)
        case .dropped(let stream, let bytes):
            let text = "\(bytes) bytes of \(stream.rawValue) were dropped here: the worker could not publish them "
                + "as fast as they came; the final status has all the output"
            return OutputStreamEntry(kind: .notice, sequence: sequence, data: Array(text.utf8))
        case .notice(let text):
            return OutputStreamEntry(kind: .notice, sequence: sequence, data: Array(text.utf8))
        }
    }
}
