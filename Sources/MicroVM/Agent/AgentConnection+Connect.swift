import AgentProtocol
import Logging
import NIOCore
import NIOPosix

/// Getting a connection to an agent and its first words: connecting with retries while the VMM
/// starts, Firecracker's vsock handshake, the hello of a booted agent, and the resume of a restored
/// one. What follows (requests) is AgentConnection.swift.
extension AgentConnection {
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
                throw VMError(.agentProtocol, "the restored agent refused its resume (\(reply.code.rawValue)): \(GuestText.quoted(reply.message))")
            case .inbound(.message(let other)):
                throw VMError(.agentProtocol, "expected the answer to resume, got \(Self.kind(of: other))")
            case .inbound(.handshakeAccepted):
                throw VMError(.agentProtocol, "a second vsock handshake reply arrived")
            case .closed(let error):
                throw Self.closedError(error, while: "waiting for the restored agent's answer")
            }
        }
    }
}
