import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RESP
import Synchronization

/// One open, authenticated connection. Commands are pipelined: many may be in flight, and replies
/// are matched to them in order.
///
/// You get one from ``RedisClient/withDedicatedConnection(_:)`` (for blocking commands, WATCH/MULTI,
/// or anything that needs a connection to itself) or by ``connect(configuration:eventLoop:logger:)``.
public final class RedisConnection: RedisCommandExecutor, Sendable {
    /// The negotiated protocol: 3 after a successful `HELLO 3`, else 2.
    public let protocolVersion: Int
    /// The channel's event loop (callers pinned to it avoid thread hops).
    public var eventLoop: any EventLoop { channel.eventLoop }
    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    let channel: any Channel
    let handler: RedisChannelHandler
    let defaultTimeout: Duration
    let closeOnCancel: Bool
    /// The server's id for this connection, when the handshake learned it.
    public let clientID: Int?
    /// Asks the server, over another connection, to unblock client `id` (`CLIENT UNBLOCK`); true when it did.
    let unblocker: (@Sendable (Int) async -> Bool)?
    private let dirty = Atomic<Bool>(false)

    private init(
        channel: any Channel, handler: RedisChannelHandler, protocolVersion: Int, clientID: Int?,
        defaultTimeout: Duration, closeOnCancel: Bool, unblocker: (@Sendable (Int) async -> Bool)?
    ) {
        self.closeOnCancel = closeOnCancel
        self.clientID = clientID
        self.unblocker = unblocker
        self.channel = channel
        self.handler = handler
        self.protocolVersion = protocolVersion
        self.defaultTimeout = defaultTimeout
    }

    /// Opens a connection and runs the handshake (`HELLO`/`AUTH`, `CLIENT SETNAME`, `SELECT`), once, without retries.
    /// - Parameter closeOnCancel: close the connection when a command on it is cancelled (for connections
    ///   that run blocking commands); otherwise a cancelled command's reply is read and dropped.
    public static func connect(
        configuration: RedisClientConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        closeOnCancel: Bool = true
    ) async throws -> RedisConnection {
        let sslContext = try configuration.tls.map { try RedisTLSContextFactory.makeContext($0) }
        return try await connect(configuration: configuration, sslContext: sslContext, eventLoop: eventLoop, logger: logger, closeOnCancel: closeOnCancel)
    }

    static func connect(
        configuration: RedisClientConfiguration,
        sslContext: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        closeOnCancel: Bool,
        unblocker: (@Sendable (Int) async -> Bool)? = nil
    ) async throws -> RedisConnection {
        let handler = RedisChannelHandler(
            eventLoop: eventLoop, limits: configuration.decodingLimits, closeOnCancel: closeOnCancel,
            busyPoll: configuration.replyBusyPoll, logger: logger
        )
        let serverHostname = Self.serverHostname(configuration)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(configuration.timeouts.connect.nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tlsHandler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(tlsHandler)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            switch configuration.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap.connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            throw RedisError(code: .connectionFailed, message: "cannot connect to \(configuration.endpoint)", underlying: error)
        }
        do {
            let outcome = try await RedisHandshake.run(on: channel, handler: handler, configuration: configuration)
            return RedisConnection(
                channel: channel, handler: handler, protocolVersion: outcome.protocolVersion, clientID: outcome.clientID,
                defaultTimeout: configuration.timeouts.command, closeOnCancel: closeOnCancel, unblocker: unblocker
            )
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    private static func serverHostname(_ configuration: RedisClientConfiguration) -> String? {
        if let name = configuration.tls?.serverHostname { return name }
        guard case .tcp(let host, _) = configuration.endpoint else { return nil }
        // SNI must not carry IP addresses.
        let isIP = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        return isIP ? nil : host
    }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Closes the connection; commands in flight fail with ``RedisError/Code/connectionClosed``.
    public func close() {
        let handler = self.handler
        if eventLoop.inEventLoop {
            handler.close()
        } else {
            eventLoop.execute { handler.close() }
        }
    }

    /// True once a command that changes connection state (SELECT, WATCH, MULTI, CLIENT ...) ran on it.
    var isDirty: Bool { dirty.load(ordering: .relaxed) }

    // MARK: - RedisCommandExecutor

    public func send(_ command: RedisCommand, timeout: Duration?) async throws -> RESPToken {
        try checkSupported(command)
        if Task.isCancelled {
            throw RedisError(code: .cancelled, command: command.name, message: "cancelled before it was sent", wasNotSent: true)
        }
        let effectiveTimeout = timeout ?? (command.isBlocking ? nil : defaultTimeout)
        let request = RedisRequest(
            encoded: command.encoded,
            replyCount: 1,
            commandName: command.name,
            deadline: effectiveTimeout.map { NIODeadline.now() + TimeAmount.nanoseconds(Int64($0.nanoseconds)) },
            pollForReply: !command.isBlocking
        )
        let token: RESPToken
        do {
            token = try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<RESPToken, any Error>) in
                    request.responder = .single(continuation)
                    submit(request)
                }
            } onCancel: {
                if command.isBlocking {
                    cancelBlocking(request)
                } else {
                    cancel(request)
                }
            }
        } catch let error as RedisError where error.code == .cancelled && closeOnCancel {
            // Inline rather than through `closingOnCancel`: this is every command's path, and the wrapper cost a call per command.
            try? await channel.closeFuture.get()
            throw error
        }
        if command.isBlocking, token.isNull, Task.isCancelled {
            // Unblocked by our CLIENT UNBLOCK: nothing was taken. Had an element arrived first, it is returned above instead.
            throw RedisError(code: .cancelled, command: command.name, message: "cancelled while blocked; the server unblocked it, nothing was consumed")
        }
        if token.isError {
            throw RedisError.server(token, command: command.name)
        }
        return token
    }

    public func sendPipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPToken] {
        guard let first = commands.first else { return [] }
        var encoded: ByteBuffer
        if commands.count == 1 {
            encoded = first.encoded
        } else {
            encoded = ByteBuffer()
            encoded.reserveCapacity(commands.reduce(0) { $0 + $1.encoded.readableBytes })
        }
        var blocking = false
        for command in commands {
            try checkSupported(command)
            blocking = blocking || command.isBlocking
            if commands.count > 1 { encoded.writeImmutableBuffer(command.encoded) }
        }
        let effectiveTimeout = timeout ?? (blocking ? nil : defaultTimeout)
        let request = RedisRequest(
            encoded: encoded,
            replyCount: commands.count,
            commandName: first.name,
            deadline: effectiveTimeout.map { NIODeadline.now() + TimeAmount.nanoseconds(Int64($0.nanoseconds)) },
            pollForReply: !blocking
        )
        return try await closingOnCancel {
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[RESPToken], any Error>) in
                    request.responder = .batch(continuation)
                    submit(request)
                }
            } onCancel: {
                cancel(request)
            }
        }
    }

    /// When a command on a close-on-cancel connection is cancelled, return only once the socket is
    /// closed: whoever acts next (e.g. pushes to the list a cancelled BLPOP waited on) must find the
    /// server already told that this client is gone.
    private func closingOnCancel<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RedisError where error.code == .cancelled && closeOnCancel {
            try? await channel.closeFuture.get()
            throw error
        }
    }

    // MARK: - Internals

    /// Sends raw requests during the handshake (before the connection object exists).
    static func sendRaw(_ commands: [RedisCommand], handler: RedisChannelHandler, timeout: Duration) async throws -> [RESPToken] {
        var encoded = ByteBuffer()
        for command in commands { encoded.writeImmutableBuffer(command.encoded) }
        let request = RedisRequest(
            encoded: encoded,
            replyCount: commands.count,
            commandName: commands.first?.name ?? "",
            deadline: NIODeadline.now() + TimeAmount.nanoseconds(Int64(timeout.nanoseconds))
        )
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[RESPToken], any Error>) in
                request.responder = .batch(continuation)
                handler.eventLoop.execute { handler.submit(request) }
            }
        } onCancel: {
            handler.eventLoop.execute { handler.cancel(request) }
        }
    }

    private func checkSupported(_ command: RedisCommand) throws {
        if command.isUnsupported {
            throw RedisError(code: .unsupportedCommand, command: command.name, message: "\(command.name) changes the connection to a non request/reply mode and is not supported")
        }
        if command.changesConnectionState {
            dirty.store(true, ordering: .relaxed)
        }
    }

    private func submit(_ request: RedisRequest) {
        let handler = self.handler
        if handler.eventLoop.inEventLoop {
            handler.submit(request)
        } else {
            request.pollForReply = false
            handler.eventLoop.execute { handler.submit(request) }
        }
    }

    private func cancel(_ request: RedisRequest) {
        let handler = self.handler
        handler.eventLoop.execute { handler.cancel(request) }
    }

    /// Cancelling a blocked command: closing our socket is not enough, because the server may hand the
    /// next pushed element to this client before it notices the close, and that element would be lost.
    /// So ask the server to unblock it (`CLIENT UNBLOCK`, over another connection) and let the reply
    /// complete the request: null when it was unblocked, the element when one arrived first (then the
    /// caller gets it although it cancelled). Only when that is impossible, close the connection.
    private func cancelBlocking(_ request: RedisRequest) {
        guard let unblocker, let clientID else {
            cancel(request)
            return
        }
        let handler = self.handler
        Task {
            // A BLPOP the server has not started yet cannot be unblocked; try again briefly.
            for attempt in 0..<5 {
                if await unblocker(clientID) { return }
                let finished = try? await handler.eventLoop.submit { request.state == .finished }.get()
                if finished ?? true { return }
                try? await Task.sleep(for: .milliseconds(5 << attempt))
            }
            handler.eventLoop.execute { handler.cancel(request) }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns &+ attoseconds / 1_000_000_000
    }
}

extension RedisError {
    /// A server error reply as an error naming the command.
    static func server(_ token: RESPToken, command: String) -> RedisError {
        let message = token.errorMessage ?? "\(token)"
        let code: Code = message.hasPrefix("WRONGPASS") || message.hasPrefix("NOAUTH") ? .authenticationFailed
            : message.hasPrefix("EXECABORT") ? .transactionAborted : .serverError
        return RedisError(code: code, command: command, message: message)
    }
}
