import AgentProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A connection to the agent of one VM over a Unix stream socket: QEMU's virtio-serial chardev, or
/// Firecracker's vsock socket with the ``AgentHandshake/firecrackerVsock(port:)`` handshake.
///
/// Every wait is bounded by a host-side timeout and ends when the calling task is cancelled. The
/// guest is never trusted: frames larger than the current limit (derived from the request's output
/// limits) are rejected from their header, and unsolicited messages are bounded. One request at a
/// time; after a timeout or cancellation the connection refuses further requests, since a late
/// reply could otherwise be taken for the answer to the next one.
public final class AgentConnection: Sendable {
    /// How to connect.
    public struct Options: Sendable, Hashable {
        public var handshake: AgentHandshake
        /// Pause between connection attempts while the socket does not accept yet.
        public var retryInterval: Duration
        /// Bound of one `CONNECT` attempt's reply (Firecracker answers at once, or closes).
        public var handshakeAttemptTimeout: Duration
        /// Largest frame accepted outside a request (the hello, errors).
        public var controlFrameMaximumBytes: Int

        public init(
            handshake: AgentHandshake = .none,
            retryInterval: Duration = .milliseconds(5),
            handshakeAttemptTimeout: Duration = .seconds(1),
            controlFrameMaximumBytes: Int = 64 << 10
        ) {
            self.handshake = handshake
            self.retryInterval = retryInterval
            self.handshakeAttemptTimeout = handshakeAttemptTimeout
            self.controlFrameMaximumBytes = controlFrameMaximumBytes
        }
    }

    private enum Usage {
        case idle
        case busy
        case unusable(String)
    }

    /// The socket this connection is attached to.
    public let socketPath: String
    /// Firecracker's host-side port from `OK <hostport>`; nil without the handshake.
    public let handshakeHostPort: UInt32?

    private let channel: any Channel
    private let mailbox: AgentMailbox
    private let frameLimit: AgentFrameLimit
    private let controlFrameMaximumBytes: Int
    private let usage = Mutex(Usage.idle)
    private let logger: Logger

    private init(
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

    /// Connects to `socketPath`, retrying while it does not exist or refuses (the VMM is starting, or
    /// under Firecracker the guest does not listen yet), until `timeout`.
    public static func connect(
        unixSocketPath socketPath: String,
        options: Options = Options(),
        timeout: Duration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> AgentConnection {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var attempts = 0
        var lastFailure = "no attempt made"
        while true {
            try Task.checkCancellation()
            attempts += 1
            let mailbox = AgentMailbox()
            let frameLimit = AgentFrameLimit(options.controlFrameMaximumBytes)
            let awaitingHandshake = options.handshake != .none
            let channel: any Channel
            do {
                channel = try await ClientBootstrap(group: eventLoopGroup)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let decoder = AgentChannelDecoder(awaitingHandshake: awaitingHandshake, limit: frameLimit)
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                            try channel.pipeline.syncOperations.addHandler(AgentChannelHandler(mailbox: mailbox))
                        }
                    }
                    .connect(unixDomainSocketPath: socketPath).get()
            } catch {
                lastFailure = "connect: \(error)"
                try await pause(options.retryInterval, until: deadline, clock: clock, lastFailure: lastFailure, socketPath: socketPath, attempts: attempts)
                continue
            }

            var hostPort: UInt32?
            if case .firecrackerVsock(let port) = options.handshake {
                do {
                    hostPort = try await handshake(port: port, channel: channel, mailbox: mailbox, options: options, deadline: deadline, clock: clock)
                } catch let error as RetryableHandshake {
                    try? await channel.close()
                    lastFailure = error.reason
                    try await pause(options.retryInterval, until: deadline, clock: clock, lastFailure: lastFailure, socketPath: socketPath, attempts: attempts)
                    continue
                } catch {
                    try? await channel.close()
                    throw error
                }
            }
            logger.debug("agent socket connected", metadata: ["socket": "\(socketPath)", "attempts": "\(attempts)"])
            return AgentConnection(
                socketPath: socketPath, handshakeHostPort: hostPort, channel: channel, mailbox: mailbox,
                frameLimit: frameLimit, controlFrameMaximumBytes: options.controlFrameMaximumBytes, logger: logger)
        }
    }

    private struct RetryableHandshake: Error { var reason: String }

    private static func handshake(
        port: UInt32, channel: any Channel, mailbox: AgentMailbox, options: Options,
        deadline: ContinuousClock.Instant, clock: ContinuousClock
    ) async throws -> UInt32 {
        try await channel.writeAndFlush(ByteBuffer(string: "CONNECT \(port)\n"))
        let wait = min(options.handshakeAttemptTimeout, max(.zero, deadline - clock.now))
        let outcome: AgentMailbox.Outcome
        do {
            outcome = try await mailbox.receive(timeout: wait, on: channel.eventLoop)
        } catch is AgentMailbox.TimedOut {
            throw RetryableHandshake(reason: "no reply to CONNECT \(port) within \(wait)")
        }
        switch outcome {
        case .inbound(.handshakeAccepted(let hostPort)):
            return hostPort
        case .closed(nil):
            // Firecracker closes the connection when nothing listens on the guest port yet.
            throw RetryableHandshake(reason: "the vsock socket closed the connection after CONNECT \(port) (nothing listening in the guest yet?)")
        case .closed(let error?):
            if let error = error as? AgentConnectionError { throw VMError(.agentProtocol, error.description) }
            throw RetryableHandshake(reason: "vsock handshake: \(error)")
        case .inbound(.message):
            throw VMError(.agentProtocol, "an agent frame arrived before the vsock handshake reply")
        }
    }

    private static func pause(
        _ interval: Duration, until deadline: ContinuousClock.Instant, clock: ContinuousClock,
        lastFailure: String, socketPath: String, attempts: Int
    ) async throws {
        guard clock.now + interval < deadline else {
            throw VMError(.agentUnreachable, "could not connect to the agent socket \(socketPath) after \(attempts) attempts: \(lastFailure)")
        }
        try await Task.sleep(for: interval)
    }

    /// Waits for the agent's unsolicited hello, which it sends as soon as its channel opens.
    public func waitForHello(timeout: Duration) async throws -> AgentHello {
        frameLimit.set(controlFrameMaximumBytes)
        let outcome: AgentMailbox.Outcome
        do {
            outcome = try await mailbox.receive(timeout: timeout, on: channel.eventLoop)
        } catch is AgentMailbox.TimedOut {
            throw VMError(.bootTimeout, "the agent did not say hello within \(timeout)")
        }
        switch outcome {
        case .inbound(.message(.hello(let hello))):
            guard hello.protocolVersion == agentProtocolVersion else {
                throw VMError(.agentProtocol, "the agent speaks protocol version \(hello.protocolVersion), the host \(agentProtocolVersion)")
            }
            return hello
        case .inbound(.message(let other)):
            throw VMError(.agentProtocol, "expected the agent's hello, got \(Self.kind(of: other))")
        case .inbound(.handshakeAccepted):
            throw VMError(.agentProtocol, "a second vsock handshake reply arrived")
        case .closed(let error):
            throw Self.closedError(error, while: "waiting for the agent's hello")
        }
    }

    /// Sends `resume` to an agent restored from a snapshot and waits at most `timeout` for the hello
    /// that answers it. Hellos without its nonce (an agent that saw the host reconnect greets on its
    /// own) are skipped; an error reply means the agent could not reseed or set its clock.
    public func resume(_ resume: AgentResume, timeout: Duration) async throws -> AgentHello {
        frameLimit.set(controlFrameMaximumBytes)
        try await send(.resume(resume))
        let deadline = ContinuousClock.now + timeout
        while true {
            let outcome = try await receive(
                before: deadline, else: VMError(.bootTimeout, "the restored agent did not answer its resume within \(timeout)"))
            switch outcome {
            case .inbound(.message(.hello(let hello))) where hello.resumeNonce == resume.nonce:
                guard hello.protocolVersion == agentProtocolVersion else {
                    throw VMError(.agentProtocol, "the agent speaks protocol version \(hello.protocolVersion), the host \(agentProtocolVersion)")
                }
                return hello
            case .inbound(.message(.hello)):
                continue
            case .inbound(.message(.error(let reply))):
                throw VMError(.agentProtocol, "the restored agent refused its resume (\(reply.code.rawValue)): \(reply.message)")
            case .inbound(.message(let other)):
                throw VMError(.agentProtocol, "expected the answer to resume, got \(Self.kind(of: other))")
            case .inbound(.handshakeAccepted):
                throw VMError(.agentProtocol, "a second vsock handshake reply arrived")
            case .closed(let error):
                throw Self.closedError(error, while: "waiting for the restored agent's answer")
            }
        }
    }

    /// Sends `request` and waits at most `timeout` for its result. An `.error` reply, a closed
    /// channel and a malformed or oversized frame become a ``VMError``.
    public func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
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
        frameLimit.set(max(controlFrameMaximumBytes, Self.maximumResultFrameBytes(for: request.limits)))
        try await send(.run(request))

        let deadline = ContinuousClock.now + timeout
        while true {
            let outcome = try await receive(
                before: deadline, else: VMError(.hostTimeout, "no result from the agent within the host timeout of \(timeout)"))
            switch outcome {
            case .inbound(.message(.result(let result))):
                guard result.id == request.id else {
                    throw VMError(.agentProtocol, "the agent answered request \(result.id), expected \(request.id)")
                }
                finished = true
                return result
            case .inbound(.message(.error(let reply))):
                finished = true
                throw VMError(.agentProtocol, "the agent rejected the request (\(reply.code.rawValue)): \(reply.message)")
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
    private func receive(before deadline: ContinuousClock.Instant, else timeoutError: @autoclosure () -> VMError) async throws -> AgentMailbox.Outcome {
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

    private static func closedError(_ error: (any Error)?, while activity: String) -> VMError {
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

    private static func kind(of message: AgentMessage) -> String {
        switch message {
        case .hello: return "a hello"
        case .run: return "a run request"
        case .result: return "a result"
        case .error: return "an error reply"
        case .shutdown: return "a shutdown"
        case .resume: return "a resume"
        }
    }
}
