import AgentProtocol
import Logging
import NIOCore
import Synchronization

/// A connection to the agent of one VM over a Unix stream socket: QEMU's virtio-serial chardev, or
/// Firecracker's vsock socket with the ``AgentHandshake/firecrackerVsock(port:)`` handshake.
///
/// This file is the request protocol (one run at a time, its frame limit and its reply); getting a
/// connection and the agent's first words (connect with retries, the vsock handshake, hello, resume)
/// are in AgentConnection+Connect.swift.
///
/// Every wait is bounded by a host-side timeout and ends when the calling task is cancelled. The
/// guest is never trusted: frames larger than the current limit (derived from the request's output
/// limits) are rejected from their header, and unsolicited messages are bounded. One request at a
/// time; after a timeout or cancellation the connection refuses further requests, since a late
/// reply could otherwise be taken for the answer to the next one.
public final class AgentConnection: Sendable {
    private enum Usage {
        case idle
        case busy
        case unusable(String)
    }

    /// The socket this connection is attached to.
    public let socketPath: String
    /// Firecracker's host-side port from `OK <hostport>`; nil without the handshake.
    public let handshakeHostPort: UInt32?

    let channel: any Channel
    let mailbox: AgentMailbox
    let frameLimit: AgentFrameLimit
    let controlFrameMaximumBytes: Int
    private let usage = Mutex(Usage.idle)
    private let logger: Logger

    init(
        socketPath: String, handshakeHostPort: UInt32?, channel: any Channel, mailbox: AgentMailbox,
        frameLimit: AgentFrameLimit, controlFrameMaximumBytes: Int, logger: Logger
    ) {
        self.socketPath = socketPath
        self.handshakeHostPort = handshakeHostPort
        self.channel = channel
        self.mailbox = mailbox
        self.frameLimit = frameLimit
        self.controlFrameMaximumBytes = controlFrameMaximumBytes
        self.logger = logger
    }

    /// Largest result frame payload accepted for a request with these limits: three streams
    /// (stdout, stderr, compiler output) of `maxOutputBytesPerStream` each, base64-encoded in JSON
    /// (4/3 the size), plus slack for the other fields and the message.
    public static func maximumResultFrameBytes(for limits: ResourceLimits) -> Int {
        let perStream = max(0, limits.maxOutputBytesPerStream)
        let base64 = (perStream + 2) / 3 * 4
        let (total, overflow) = base64.multipliedReportingOverflow(by: 3)
        return overflow ? Int(Int32.max) : min(Int(Int32.max), total + (256 << 10))
    }

    /// Sends `request` and waits at most `timeout` for its result. An `.error` reply, a closed
    /// channel and a malformed or oversized frame become a ``VMError``.
    public func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler? = nil) async throws -> RunResult {
        try usage.withLock { usage in
            switch usage {
            case .idle: usage = .busy
            case .busy: throw VMError(.agentProtocol, "a request is already running on this agent connection")
            case .unusable(let why): throw VMError(.agentProtocol, "the agent connection is unusable: \(why)")
            }
        }
        var finished = false
        defer {
            let clean = finished
            usage.withLock { usage in
                if clean { usage = .idle } else if case .busy = usage { usage = .unusable("an earlier request did not complete") }
            }
        }
        frameLimit.set(max(controlFrameMaximumBytes, request.maximumResultBytes))
        // Chunks skip the mailbox: a flood of them must neither fill its small queue nor wait for this task.
        if let output {
            let gate = OutputChunkGate(request: request, logger: logger, forward: output)
            mailbox.setOutputHandler { chunk in gate.admit(chunk) }
        } else {
            mailbox.setOutputHandler(OutputChunkGate.discard)
        }
        defer { mailbox.setOutputHandler(OutputChunkGate.discard) }
        try await send(.run(request))

        let deadline = ContinuousClock.now + timeout
        while true {
            let outcome = try await receive(
                before: deadline, else: VMError(.hostTimeout, "no result from the agent within the host timeout of \(timeout)"))
            switch outcome {
            case .inbound(.message(.result(let result))):
                guard result.id == request.id else {
                    throw VMError(.agentProtocol, "the agent answered request \(GuestText.quoted(result.id)), expected \(request.id)")
                }
                finished = true
                return result
            case .inbound(.message(.error(let reply))):
                finished = true
                throw VMError(.agentProtocol, "the agent rejected the request (\(reply.code.rawValue)): \(GuestText.quoted(reply.message))")
            case .inbound(.message(.hello)):
                // A restarted agent says hello again; that is not an answer.
                logger.debug("ignoring a repeated agent hello while waiting for a result")
                continue
            case .inbound(.message(let other)):
                throw VMError(.agentProtocol, "expected a result, got \(Self.kind(of: other))")
            case .inbound(.handshakeAccepted):
                throw VMError(.agentProtocol, "a second vsock handshake reply arrived")
            case .closed(let error):
                throw Self.closedError(error, while: "waiting for the result of \(request.id)")
            }
        }
    }

    /// The next inbound event, or `timeoutError` once `deadline` has passed.
    func receive(before deadline: ContinuousClock.Instant, else timeoutError: @autoclosure () -> VMError) async throws -> AgentMailbox.Outcome {
        do {
            return try await mailbox.receive(timeout: max(.zero, deadline - .now), on: channel.eventLoop)
        } catch is AgentMailbox.TimedOut {
            throw timeoutError()
        }
    }

    /// Sends one message without waiting for an answer (e.g. `.shutdown`).
    public func send(_ message: AgentMessage) async throws {
        let frame: [UInt8]
        do {
            frame = try AgentFrame.encode(message)
        } catch {
            throw VMError(.agentProtocol, "could not encode \(Self.kind(of: message)): \(error)")
        }
        // A guest that stops reading must not block the host: write failures close the mailbox,
        // and the caller's receive deadline bounds the wait.
        let mailbox = self.mailbox
        channel.writeAndFlush(ByteBuffer(bytes: frame)).whenFailure { error in
            mailbox.close(error: error)
        }
    }

    /// Whether the channel is open and no earlier request left it unusable.
    public var isOpen: Bool {
        guard channel.isActive else { return false }
        return usage.withLock { usage in
            if case .unusable = usage { return false }
            return true
        }
    }

    /// Closes the socket. Safe to call more than once.
    public func close() async {
        try? await channel.close()
    }

    static func closedError(_ error: (any Error)?, while activity: String) -> VMError {
        switch error {
        case nil:
            return VMError(.agentUnreachable, "the agent channel closed while \(activity) (guest crashed, panicked or powered off?)")
        case let frameError as AgentFrameError:
            return VMError(.agentProtocol, "malformed frame from the agent while \(activity): \(frameError)")
        case let connectionError as AgentConnectionError:
            return VMError(.agentProtocol, "\(connectionError) while \(activity)")
        case let error?:
            return VMError(.agentUnreachable, "the agent channel failed while \(activity): \(error)")
        }
    }

    static func kind(of message: AgentMessage) -> String {
        switch message {
        case .hello: return "a hello"
        case .run: return "a run request"
        case .result: return "a result"
        case .error: return "an error reply"
        case .shutdown: return "a shutdown"
        case .resume: return "a resume"
        case .output: return "an output chunk"
        }
    }
}
