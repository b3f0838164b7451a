import NIOCore
import RESP

/// One write to a connection (a single command or a pipeline) and the caller waiting for it.
///
/// Confinement: the submitting task fills it in before handing it to the event loop; from then on
/// only the event loop touches it. That is why `@unchecked Sendable` is sound here.
final class RedisRequest: @unchecked Sendable {
    enum Responder {
        // Unsafe continuations: `state` guarantees exactly one resume, and the checked ones cost an allocation per command.
        case single(UnsafeContinuation<RESPToken, any Error>)
        case batch(UnsafeContinuation<[RESPToken], any Error>)
        case none
    }

    enum State {
        case created
        case written
        case finished
    }

    /// All commands of the request, back to back.
    let encoded: ByteBuffer
    /// How many replies complete it.
    let replyCount: Int
    /// For errors: the command name (first command of a pipeline).
    let commandName: String
    let deadline: NIODeadline?
    /// Whether the event loop may busy-poll for the reply (``ReplyBusyPoller``). Not for blocking
    /// commands, whose reply may take seconds, nor for callers off the event loop: their own thread
    /// must be woken for the reply anyway, and on a small machine the polling loop would hold the CPU it needs.
    var pollForReply: Bool

    var responder: Responder = .none
    var state: State = .created
    /// Cancellation arrived before the event loop saw the request.
    var cancelRequested = false
    var received = 0
    var replies: [RESPToken] = []

    init(encoded: ByteBuffer, replyCount: Int, commandName: String, deadline: NIODeadline?, pollForReply: Bool = false) {
        self.pollForReply = pollForReply
        self.encoded = encoded
        self.replyCount = replyCount
        self.commandName = commandName
        self.deadline = deadline
    }

    /// Feeds one reply; returns true when the request has all its replies.
    func receive(_ token: RESPToken) -> Bool {
        received += 1
        let done = received == replyCount
        guard state != .finished else { return done }
        switch responder {
        case .single(let continuation):
            state = .finished
            responder = .none
            continuation.resume(returning: token)
        case .batch(let continuation):
            if replies.isEmpty { replies.reserveCapacity(replyCount) }
            replies.append(token)
            if done {
                state = .finished
                responder = .none
                continuation.resume(returning: replies)
                replies = []
            }
        case .none:
            break
        }
        return done
    }

    /// Resumes the caller with `error` unless it has been resumed already.
    func fail(_ error: RedisError) {
        guard state != .finished else { return }
        state = .finished
        let responder = self.responder
        self.responder = .none
        replies = []
        switch responder {
        case .single(let continuation): continuation.resume(throwing: error)
        case .batch(let continuation): continuation.resume(throwing: error)
        case .none: break
        }
    }
}
