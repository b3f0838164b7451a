import AgentProtocol
import Logging
import Synchronization

/// Lets through the output chunks of one streamed request that keep the rules
/// (``OutputChunk/problem(expectedID:expectedOffset:limit:)``): for this request, each stream contiguous
/// from offset 0, never past the request's output limit. The guest is not trusted to keep them; a chunk
/// that breaks one is dropped and so is the rest of its stream (the offsets no longer line up), with one
/// warning. The result is not affected: it is checked on its own and carries all the output.
final class OutputChunkGate: Sendable {
    private struct State {
        var offsets: [OutputStreamKind: Int] = [:]
        var refused: Set<OutputStreamKind> = []
    }

    /// The handler outside a streamed run: a chunk nobody asked for is dropped.
    static let discard: OutputChunkHandler = { _ in }

    private let requestID: String
    private let limit: Int
    private let forward: OutputChunkHandler
    private let logger: Logger
    private let state = Mutex(State())

    init(request: RunRequest, logger: Logger, forward: @escaping OutputChunkHandler) {
        self.requestID = request.id
        self.limit = max(0, request.limits.maxOutputBytesPerStream)
        self.forward = forward
        self.logger = logger
    }

    /// Checks `chunk` and forwards it when it keeps the rules. Runs on the event loop: no waiting.
    func admit(_ chunk: OutputChunk) {
        let problem: String?? = state.withLock { state in
            guard !state.refused.contains(chunk.stream) else { return .some(nil) }
            let expected = state.offsets[chunk.stream] ?? 0
            if let problem = chunk.problem(expectedID: requestID, expectedOffset: expected, limit: limit) {
                state.refused.insert(chunk.stream)
                return .some(problem)
            }
            state.offsets[chunk.stream] = expected + chunk.data.count
            return nil
        }
        switch problem {
        case nil:
            forward(chunk)
        case .some(nil):
            return
        case .some(let reason?):
            logger.warning(
                "dropping the rest of a stream the agent sent out of the rules",
                metadata: ["request": "\(requestID)", "stream": "\(chunk.stream.rawValue)", "problem": "\(reason)"])
        }
    }
}
