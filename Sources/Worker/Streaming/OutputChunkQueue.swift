import AgentProtocol
import Synchronization

/// The bounded hand-over between a streamed run's agent channel and its ``OutputPublisher``.
///
/// The channel's event loop offers chunks and must never wait (a guest that floods output would stall the
/// frame reader, and with it the result); Redis may be slower than the guest. So ``offer(_:_:)`` never
/// blocks: what fits under ``capacityBytes`` is queued (consecutive chunks of a stream coalesced), what
/// does not is counted and dropped, and the drop becomes one ``Piece/dropped(_:bytes:)`` at the point
/// where it happened, so the stream says so. Host memory for a job's stream is bounded by the capacity
/// plus a few small markers, whatever the guest sends.
final class OutputChunkQueue: Sendable {
    /// What the publisher takes out, in order.
    enum Piece: Sendable, Equatable {
        case output(OutputStreamKind, [UInt8])
        /// This many bytes of the stream were dropped here (the buffer was full).
        case dropped(OutputStreamKind, bytes: Int)
        /// A sentence about the stream for whoever reads it.
        case notice(String)
    }

    /// Bookkeeping cost charged per queued piece on top of its bytes: a flood of one-byte chunks is bounded too.
    static let pieceOverheadBytes = 64
    /// Coalescing stops at this size, so one stream entry stays a reasonable Redis value.
    static let maximumPieceBytes = 64 << 10

    private struct State {
        var pieces: [Piece] = []
        var queuedBytes = 0
        /// Dropped since the last accepted piece, per stream: becomes a marker before the next piece.
        var pendingDrops: [OutputStreamKind: Int] = [:]
        var droppedTotal = 0
        var finished = false
        var waiter: CheckedContinuation<[Piece]?, Never>?
    }

    /// Most bytes (plus ``pieceOverheadBytes`` each) queued at once.
    let capacityBytes: Int
    private let state = Mutex(State())

    init(capacityBytes: Int) { self.capacityBytes = max(0, capacityBytes) }

    /// Queues `bytes` of `stream` if they fit, else counts them as dropped. Never waits. Returns whether
    /// they were queued.
    @discardableResult
    func offer(_ stream: OutputStreamKind, _ bytes: some Collection<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return true }
        let (accepted, waiter): (Bool, CheckedContinuation<[Piece]?, Never>?) = state.withLock { state in
            guard !state.finished else { return (false, nil) }
            if case .output(let tailStream, var tail)? = state.pieces.last, tailStream == stream, state.pendingDrops.isEmpty,
                tail.count + bytes.count <= Self.maximumPieceBytes, state.queuedBytes + bytes.count <= capacityBytes
            {
                state.pieces.removeLast()
                tail.append(contentsOf: bytes)
                state.pieces.append(.output(stream, tail))
                state.queuedBytes += bytes.count
                return (true, Self.takeWaiter(&state))
            }
            let markers = state.pendingDrops.count * Self.pieceOverheadBytes
            let cost = bytes.count + Self.pieceOverheadBytes + markers
            guard state.queuedBytes + cost <= capacityBytes else {
                state.pendingDrops[stream, default: 0] += bytes.count
                state.droppedTotal += bytes.count
                return (false, nil)
            }
            Self.flushDrops(&state)
            state.pieces.append(.output(stream, Array(bytes)))
            state.queuedBytes += bytes.count + Self.pieceOverheadBytes
            return (true, Self.takeWaiter(&state))
        }
        waiter?.resume(returning: nextBatch())
        return accepted
    }

    /// Queues a notice (small, bounded by its callers: a few per job), in order with the output.
    func note(_ text: String) {
        let waiter = state.withLock { state -> CheckedContinuation<[Piece]?, Never>? in
            guard !state.finished else { return nil }
            Self.flushDrops(&state)
            state.pieces.append(.notice(text))
            state.queuedBytes += text.utf8.count + Self.pieceOverheadBytes
            return Self.takeWaiter(&state)
        }
        waiter?.resume(returning: nextBatch())
    }

    /// No more offers; ``next()`` returns what is left, then nil.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<[Piece]?, Never>? in
            state.finished = true
            Self.flushDrops(&state)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nextBatch())
    }

    /// Everything queued, oldest first, waiting while nothing is; nil once finished and empty. One consumer.
    func next() async -> [Piece]? {
        if let batch = nextBatch() { return batch }
        return await withCheckedContinuation { continuation in
            let ready: Bool = state.withLock { state in
                if !state.pieces.isEmpty || state.finished { return true }
                state.waiter = continuation
                return false
            }
            if ready { continuation.resume(returning: nextBatch()) }
        }
    }

    /// Bytes (with overheads) queued now: never above ``capacityBytes`` plus two drop markers.
    var queuedBytes: Int { state.withLock { $0.queuedBytes } }
    /// Bytes dropped so far because the queue was full.
    var droppedBytes: Int { state.withLock { $0.droppedTotal } }

    /// Takes the queued pieces (nil when there are none; after ``finish()`` also nil: the end).
    private func nextBatch() -> [Piece]? {
        state.withLock { state in
            guard !state.pieces.isEmpty else { return nil }
            defer {
                state.pieces = []
                state.queuedBytes = 0
            }
            return state.pieces
        }
    }

    private static func takeWaiter(_ state: inout State) -> CheckedContinuation<[Piece]?, Never>? {
        defer { state.waiter = nil }
        return state.waiter
    }

    private static func flushDrops(_ state: inout State) {
        for stream in OutputStreamKind.allCases {
            guard let bytes = state.pendingDrops.removeValue(forKey: stream) else { continue }
            state.pieces.append(.dropped(stream, bytes: bytes))
            state.queuedBytes += pieceOverheadBytes
        }
    }
}
