import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` process on a free loopback port, in its own temp dir, for tests and benchmarks.
///
/// Prefer ``withRedisServer(_:_:)``, which always stops the server. When managing it by hand,
/// call ``stop()`` (idempotent); `deinit` SIGKILLs a server that was forgotten, as a last resort.
///
/// ```swift
/// try await withRedisServer(RedisServerOptions(password: "secret")) { server in
///     let client = RedisClient(configuration: try .init(url: server.url(password: "secret")), ...)
/// }
/// ```
public final class RedisServer: Sendable {
    /// The loopback host the server binds to.
    public let host = "127.0.0.1"
    /// The plain TCP port (stable across ``restart()``).
    public let port: Int
    /// The TLS port when ``RedisServerOptions/tls`` was set (stable across ``restart()``).
    public let tlsPort: Int?
    /// The unix socket path when ``RedisServerOptions/unixSocket`` was set.
    public let unixSocketPath: String?
    /// The server's working directory (data files, AOF, log). Removed by ``stop()``.
    public let directory: String
    /// The options it was started with.
    public let options: RedisServerOptions

    private let process = Mutex<RedisServerProcess?>(nil)
    private let stopped = Atomic<Bool>(false)

    /// `redis://127.0.0.1:port`.
    public var url: String { "redis://\(host):\(port)" }

    /// `redis://[user:password@]127.0.0.1:port[/db]`.
    public func url(user: String? = nil, password: String? = nil, db: Int? = nil) -> String {
        Self.url(scheme: "redis", host: host, port: port, user: user, password: password, db: db)
    }

    /// `rediss://[user:password@]127.0.0.1:tlsPort[/db]`; nil without TLS.
    public func tlsURL(user: String? = nil, password: String? = nil, db: Int? = nil, host: String? = nil) -> String? {
        guard let tlsPort else { return nil }
        return Self.url(scheme: "rediss", host: host ?? self.host, port: tlsPort, user: user, password: password, db: db)
    }

    /// `unix:///path/to/redis.sock`; nil without a unix socket.
    public var unixURL: String? { unixSocketPath.map { "unix://\($0)" } }

    /// The PID of the running process, nil when it is not running.
    public var pid: Int32? {
        process.withLock { p in
            guard let p, p.isRunning else { return nil }
            return p.pid
        }
    }

    private init(options: RedisServerOptions, port: Int, tlsPort: Int?, directory: String) {
        self.options = options
        self.port = port
        self.tlsPort = tlsPort
        self.directory = directory
        self.unixSocketPath = options.unixSocket ? directory + "/redis.sock" : nil
    }

    /// Starts a server and waits until it answers PING. Retries with new ports if another
    /// process grabbed the free port between probing and binding.
    public static func start(_ options: RedisServerOptions = RedisServerOptions()) async throws -> RedisServer {
        RedisServerSweeper.sweep()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let directory = try makeTemporaryDirectory()
            RedisServerSweeper.recordOwner(in: directory)
            let server = RedisServer(
                options: options,
                port: try freeLoopbackPort(),
                tlsPort: options.tls == nil ? nil : try freeLoopbackPort(),
                directory: directory
            )
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
                await server.stop()
            }
        }
        throw lastError ?? RedisServerError(message: "could not start redis-server")
    }

    /// SIGKILLs the server (no shutdown, no final save) and waits until it is gone.
    /// Data dir and ports are kept, so ``restart()`` brings it back.
    public func kill() async {
        guard let running = takeProcess() else { return }
        running.signal(SIGKILL)
        await Self.waitForExit(running)
    }

    /// Starts the server again on the same ports with the same data dir (after ``kill()``).
    public func restart() async throws {
        await kill()
        try await launch()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 2 s) and removes its temp dir. Idempotent.
    public func stop() async {
        if let running = takeProcess() {
            running.signal(SIGTERM)
            let deadline = ContinuousClock.now + .seconds(2)
            while running.isRunning, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
            running.signal(SIGKILL)
            await Self.waitForExit(running)
        }
        if !stopped.exchange(true, ordering: .relaxed) {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func takeProcess() -> RedisServerProcess? {
        process.withLock { p in
            defer { p = nil }
            return p
        }
    }

    /// The server's log, for failure messages.
    public func log() -> String {
        (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
    }

    deinit {
        // Safety net only: a test that forgot `stop()` must not leave a server running.
        process.withLock { p in
            if let p, p.isRunning {
                p.signal(SIGKILL)
                p.waitUntilExit()
            }
        }
        if !stopped.load(ordering: .relaxed) {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    // MARK: - Internals

    private func arguments() -> [String] {
        var args = [
            "--port", String(port),
            "--bind", host,
            "--dir", directory,
            "--logfile", directory + "/redis.log",
            "--pidfile", directory + "/redis.pid",
            "--daemonize", "no",
            "--save", "",
            "--protected-mode", "no",
        ]
        if let password = options.password {
            args += ["--requirepass", password]
        }
        for user in options.aclUsers {
            // One argv entry per ACL word: redis-server rejects a single "name on >pw ..." argument.
            args += ["--user", user.name, "on", ">" + user.password] + user.rules
        }
        if options.appendOnly {
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        }
        if let unixSocketPath {
            args += ["--unixsocket", unixSocketPath, "--unixsocketperm", "700"]
        }
        if let tls = options.tls, let tlsPort {
            args += [
                "--tls-port", String(tlsPort),
                "--tls-cert-file", tls.certificateFile,
                "--tls-key-file", tls.keyFile,
                "--tls-ca-cert-file", tls.caCertificateFile,
                "--tls-auth-clients", tls.authenticateClients ? "yes" : "no",
            ]
        }
        return args + options.extraArguments
    }

    private func launch() async throws {
        let p = try RedisServerProcess(executable: options.executable, arguments: arguments())
        process.withLock { $0 = p }

        let deadline = ContinuousClock.now + options.startTimeout
        while ContinuousClock.now < deadline {
            if !p.isRunning {
                throw RedisServerError(message: "redis-server exited with status \(p.terminationStatus) on start; log:\n\(log())")
            }
            if Self.answersPing(host: host, port: port) {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RedisServerError(message: "redis-server did not answer PING within \(options.startTimeout); log:\n\(log())")
    }

    private static func waitForExit(_ p: RedisServerProcess) async {
        while p.isRunning {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private static func url(scheme: String, host: String, port: Int, user: String?, password: String?, db: Int?) -> String {
        var auth = ""
        if let password {
            auth = (user ?? "") + ":" + password + "@"
        } else if let user {
            auth = user + "@"
        }
        return "\(scheme)://\(auth)\(host):\(port)" + (db.map { "/\($0)" } ?? "")
    }

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/" + RedisServerSweeper.prefix + "XXXXXX").utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RedisServerError(message: "mkdtemp failed: errno \(errno)")
        }
        return String(cString: result)
    }
}

/// Runs `body` with a fresh server and always stops it afterwards, also when `body` throws.
public func withRedisServer<T>(
    _ options: RedisServerOptions = RedisServerOptions(),
    _ body: (RedisServer) async throws -> T
) async throws -> T {
    let server = try await RedisServer.start(options)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Why a test redis-server could not be started.
public struct RedisServerError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
