import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RESP
import Synchronization

/// A Redis client: one shared, pipelined connection for ordinary commands, plus dedicated
/// connections for blocking commands and ``withDedicatedConnection(_:)``.
///
/// Connections are opened lazily and reopened after failures with exponential backoff and jitter
/// (``RedisClientConfiguration/Reconnect``). A command in flight when its connection dies fails with
/// ``RedisError/Code/connectionClosed`` (it may or may not have run); it is not retried, because
/// Redis commands are not all idempotent. Retried once on a fresh connection: a command that never
/// reached the socket, a read-only command (``RedisCommand/isReadOnly``), and a command answered
/// `LOADING` by a restarting server (with backoff).
///
/// Cancellation and timeouts: a Redis command cannot be withdrawn once sent. A cancelled ordinary
/// command throws ``RedisError/Code/cancelled`` at once (it may still run; its reply is dropped).
/// A cancelled blocking command is unblocked with `CLIENT UNBLOCK`, so it never consumes an element
/// afterwards (if an element arrived first, it is returned despite the cancellation); without
/// permission for that, its connection is closed. A command timeout closes its connection, so a
/// late reply can never be taken for another command's.
///
/// ```swift
/// let redis = RedisClient(configuration: try .init(url: "redis://127.0.0.1:6379"), logger: logger)
/// defer { redis.close() }
/// try await redis.send("RPUSH", "jobs", payload)
/// let job = try await redis.send(RedisCommand("BLMOVE", "jobs", "running", "LEFT", "RIGHT", 5))  // dedicated connection
/// ```
public final class RedisClient: RedisCommandExecutor, Sendable {
    public let configuration: RedisClientConfiguration
    public let eventLoopGroup: any EventLoopGroup
    /// The event loop all of this client's connections run on (picked from the group at init).
    public let eventLoop: any EventLoop
    /// An executor on ``eventLoop``. Hot loops run under `withTaskExecutorPreference(redis.executor) { ... }`
    /// send, write and handle replies on one thread, without two thread wake-ups per command
    /// (measured: about 2x the throughput and half the latency; see `codebench-worker bench redis`).
    public let executor: EventLoopTaskExecutor
    let logger: Logger

    private enum Shared {
        case none
        case connecting(generation: Int, Task<RedisConnection, any Error>)
        case connected(RedisConnection)
    }

    private struct State {
        var shared: Shared = .none
        var generation = 0
        var idle: [RedisConnection] = []
        var leased: [ObjectIdentifier: RedisConnection] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let tlsContext: Result<NIOSSLContext?, RedisError>

    /// Creates the client; no connection is opened until the first command (or ``connect()``).
    public init(
        configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.eventLoop = eventLoopGroup.next()
        self.executor = EventLoopTaskExecutor(eventLoop: eventLoop)
        self.logger = logger
        if let tls = configuration.tls {
            tlsContext = Result { () throws(RedisError) in
                do { return try RedisTLSContextFactory.makeContext(tls) } catch let error as RedisError { throw error } catch {
                    throw RedisError(code: .invalidConfiguration, message: "cannot set up TLS", underlying: error)
                }
            }
        } else {
            tlsContext = .success(nil)
        }
    }

    deinit {
        close()
    }

    /// Opens the shared connection now, so that a wrong password or an unreachable server is
    /// reported at startup rather than by the first command.
    public func connect() async throws {
        _ = try await sharedConnection()
    }

    /// Closes every connection. Commands in flight and later ones fail with ``RedisError/Code/clientClosed``
    /// or ``RedisError/Code/connectionClosed``. Idempotent.
    public func close() {
        let (connections, task): ([RedisConnection], Task<RedisConnection, any Error>?) = state.withLock { state in
            state.closed = true
            var connections = state.idle + Array(state.leased.values)
            var task: Task<RedisConnection, any Error>?
            switch state.shared {
            case .connected(let connection): connections.append(connection)
            case .connecting(_, let t): task = t
            case .none: break
            }
            state.shared = .none
            state.idle = []
            state.leased = [:]
            return (connections, task)
        }
        task?.cancel()
        for connection in connections { connection.close() }
    }

    // MARK: - RedisCommandExecutor

    /// Runs a command: blocking commands (``RedisCommand/isBlocking``) on a dedicated connection,
    /// everything else pipelined on the shared one.
    public func send(_ command: RedisCommand, timeout: Duration?) async throws -> RESPToken {
        var attempt = 0
        while true {
            do {
                return try await sendOnce(command, timeout: timeout)
            } catch let error as RedisError where error.serverErrorPrefix == "LOADING" && attempt + 1 < configuration.reconnect.maxAttempts {
                // A restarted server answers LOADING until its data set is in memory; the command did not run, so waiting and retrying is safe.
                do {
                    try await Task.sleep(for: configuration.reconnect.backoff(afterAttempt: attempt))
                } catch {
                    throw RedisError(code: .cancelled, command: command.name, message: "cancelled while waiting for the server to load its data")
                }
                attempt += 1
            }
        }
    }

    private func sendOnce(_ command: RedisCommand, timeout: Duration?) async throws -> RESPToken {
        if command.isBlocking {
            return try await withDedicatedConnection { try await $0.send(command, timeout: timeout) }
        }
        do {
            return try await sharedConnection().send(command, timeout: timeout)
        } catch let error as RedisError where error.wasNotSent || (error.code == .connectionClosed && command.isReadOnly) {
            // Never sent, or read-only: running it on a fresh connection cannot apply anything twice.
            // (A write written just before the client saw the server go away fails instead: it may have run.)
            return try await sharedConnection().send(command, timeout: timeout)
        }
    }

    public func sendPipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPToken] {
        if commands.contains(where: \.isBlocking) {
            return try await withDedicatedConnection { try await $0.sendPipeline(commands, timeout: timeout) }
        }
        do {
            return try await sharedConnection().sendPipeline(commands, timeout: timeout)
        } catch let error as RedisError where error.wasNotSent {
            return try await sharedConnection().sendPipeline(commands, timeout: timeout)
        }
    }

    // MARK: - Dedicated connections

    /// Runs `body` with a connection nobody else uses while it runs: for blocking commands,
    /// WATCH/MULTI/EXEC, or a long sequence that must not interleave. Cancelling a command on it
    /// closes the connection. Afterwards the connection is kept for reuse if it is healthy and no
    /// state-changing command (SELECT, WATCH, MULTI, CLIENT ...) ran on it; otherwise it is closed.
    public func withDedicatedConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let connection = try await leaseDedicated()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func leaseDedicated() async throws -> RedisConnection {
        let reused: RedisConnection? = try state.withLock { state in
            guard !state.closed else { throw Self.closedError() }
            while let connection = state.idle.popLast() {
                if connection.isActive {
                    state.leased[ObjectIdentifier(connection)] = connection
                    return connection
                }
            }
            return nil
        }
        if let reused { return reused }
        let connection = try await connectWithRetry(closeOnCancel: true)
        let accepted = state.withLock { state in
            guard !state.closed else { return false }
            state.leased[ObjectIdentifier(connection)] = connection
            return true
        }
        guard accepted else {
            connection.close()
            throw Self.closedError()
        }
        return connection
    }

    private func release(_ connection: RedisConnection) {
        let keep = state.withLock { state in
            state.leased[ObjectIdentifier(connection)] = nil
            guard !state.closed, connection.isActive, !connection.isDirty,
                  state.idle.count < configuration.maxIdleDedicatedConnections else { return false }
            state.idle.append(connection)
            return true
        }
        if !keep { connection.close() }
    }

    // MARK: - Shared connection

    /// Whether the shared connection is open as far as the event loop knows: false once it has
    /// read the server's FIN. Lets tests wait for that instead of sleeping.
    package var hasActiveSharedConnection: Bool {
        state.withLock { state in
            if case .connected(let connection) = state.shared { return connection.isActive }
            return false
        }
    }

    private func sharedConnection() async throws -> RedisConnection {
        enum Next {
            case use(RedisConnection)
            case wait(Task<RedisConnection, any Error>)
        }
        let next: Next = try state.withLock { state in
            guard !state.closed else { throw Self.closedError() }
            switch state.shared {
            case .connected(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(_, let task):
                return .wait(task)
            case .connected, .none:
                state.generation += 1
                let generation = state.generation
                let task = Task { try await self.openShared(generation: generation) }
                state.shared = .connecting(generation: generation, task)
                return .wait(task)
            }
        }
        switch next {
        case .use(let connection): return connection
        case .wait(let task): return try await task.value
        }
    }

    private func openShared(generation: Int) async throws -> RedisConnection {
        do {
            let connection = try await connectWithRetry(closeOnCancel: false)
            let accepted = state.withLock { state in
                guard !state.closed, case .connecting(let g, _) = state.shared, g == generation else { return false }
                state.shared = .connected(connection)
                return true
            }
            guard accepted else {
                connection.close()
                throw Self.closedError()
            }
            connection.closeFuture.whenComplete { [weak self] _ in
                self?.sharedClosed(connection)
            }
            return connection
        } catch {
            state.withLock { state in
                if case .connecting(let g, _) = state.shared, g == generation { state.shared = .none }
            }
            throw error
        }
    }

    private func sharedClosed(_ connection: RedisConnection) {
        state.withLock { state in
            if case .connected(let current) = state.shared, current === connection {
                state.shared = .none
            }
        }
        logger.debug("shared redis connection closed")
    }

    // MARK: - Connecting

    private func connectWithRetry(closeOnCancel: Bool) async throws -> RedisConnection {
        let sslContext = try tlsContext.get()
        let reconnect = configuration.reconnect
        let unblocker: @Sendable (Int) async -> Bool = { [weak self] id in
            guard let self else { return false }
            return await self.unblock(clientID: id)
        }
        var lastError: (any Error)?
        for attempt in 0..<max(1, reconnect.maxAttempts) {
            if attempt > 0 {
                do {
                    try await Task.sleep(for: reconnect.backoff(afterAttempt: attempt - 1))
                } catch {
                    throw RedisError(code: .cancelled, message: "cancelled while waiting to reconnect")
                }
            }
            if state.withLock({ $0.closed }) { throw Self.closedError() }
            do {
                return try await RedisConnection.connect(
                    configuration: configuration,
                    sslContext: sslContext,
                    eventLoop: eventLoop,
                    logger: logger,
                    closeOnCancel: closeOnCancel,
                    unblocker: closeOnCancel ? unblocker : nil
                )
            } catch let error as RedisError where error.code == .authenticationFailed || error.code == .invalidConfiguration {
                // Retrying cannot fix a wrong password or a bad database number: fail now.
                throw error
            } catch {
                lastError = error
                logger.debug("redis connection attempt failed", metadata: ["attempt": "\(attempt + 1)", "error": "\(error)"])
            }
        }
        if let redisError = lastError as? RedisError, redisError.code == .connectionFailed {
            throw RedisError(code: .connectionFailed, message: "\(redisError.message) after \(reconnect.maxAttempts) attempts", underlying: redisError.underlying)
        }
        throw RedisError(code: .connectionFailed, message: "cannot connect to \(configuration.endpoint) after \(reconnect.maxAttempts) attempts", underlying: lastError)
    }

    /// `CLIENT UNBLOCK id` on the shared connection; true when the server unblocked that client.
    private func unblock(clientID: Int) async -> Bool {
        let reply = try? await sharedConnection().send(RedisCommand("CLIENT", "UNBLOCK", clientID), timeout: .seconds(2))
        return reply?.int == 1
    }

    private static func closedError() -> RedisError {
        RedisError(code: .clientClosed, message: "the client was closed")
    }
}
