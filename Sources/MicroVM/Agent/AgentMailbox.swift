import AgentProtocol
import NIOCore
import Synchronization

/// Hands messages from the channel's event loop to one waiting task at a time, with a deadline and
/// task cancellation. Bounded: a guest that sends more unsolicited messages than `capacity` is
/// treated as broken rather than buffered without end.
final class AgentMailbox: Sendable {
    enum Outcome: Sendable {
        case inbound(AgentInbound)
        /// The channel closed (EOF) or failed; `error` is nil for a clean EOF.
        case closed(error: (any Error)?)
    }

    struct TimedOut: Error {}

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Outcome, any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var queue: [AgentInbound] = []
        var closed = false
        var closeError: (any Error)?
        var waiter: Waiter?
        var nextID: UInt64 = 0
        var outputHandler: OutputChunkHandler = OutputChunkGate.discard
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Called on the event loop for every decoded message. Returns false when the queue is full.
    func deliver(_ inbound: AgentInbound) -> Bool {
        if case .message(.output(let chunk)) = inbound {
            let handler = state.withLock { $0.outputHandler }
            handler(chunk)
            return true
        }
        let (waiter, accepted): (Waiter?, Bool) = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, true)
            }
            guard state.queue.count < capacity else { return (nil, false) }
            state.queue.append(inbound)
            return (nil, true)
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .inbound(inbound))
        }
        return accepted
    }

    /// Where output chunks go from now on (``deliver(_:)`` hands them over on the event loop, bypassing
    /// the queue); ``OutputChunkGate/discard`` outside a streamed run.
    func setOutputHandler(_ handler: @escaping OutputChunkHandler) {
        state.withLock { $0.outputHandler = handler }
    }

    /// The channel is gone. Queued messages are still handed out first.
    func close(error: (any Error)?) {
        let waiter: Waiter? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            state.closeError = error
            guard state.queue.isEmpty else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .closed(error: error))
        }
    }

    /// The next message, `.closed` at the end; throws `TimedOut` after `timeout` and `CancellationError`
    /// when the task is cancelled. One receiver at a time.
    func receive(timeout: Duration, on eventLoop: any EventLoop) async throws -> Outcome {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                let immediate: Result<Outcome, any Error>? = state.withLock { state in
                    if !state.queue.isEmpty { return .success(.inbound(state.queue.removeFirst())) }
                    if state.closed { return .success(.closed(error: state.closeError)) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    precondition(state.waiter == nil, "AgentMailbox supports one receiver at a time")
                    state.waiter = Waiter(id: id, continuation: continuation, timer: nil)
                    return nil
                }
                if let immediate {
                    continuation.resume(with: immediate)
                    return
                }
                let timer = eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(timeout))) { [self] in
                    self.fail(id: id, with: TimedOut())
                }
                let stillWaiting = state.withLock { state in
                    guard state.waiter?.id == id else { return false }
                    state.waiter?.timer = timer
                    return true
                }
                if !stillWaiting { timer.cancel() }
            }
        } onCancel: {
            fail(id: id, with: CancellationError())
        }
    }

    private func fail(id: UInt64, with error: any Error) {
        let waiter: Waiter? = state.withLock { state in
            guard state.waiter?.id == id else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: error)
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64.max / 1_000_000_000 - 1 else { return Int64.max / 2 }
        return max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
