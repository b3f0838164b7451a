import Logging
import Metrics
import NIOCore
import Observability
import Prometheus
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// The status server over real loopback sockets, without a worker: routes, limits, shutdown.
@Suite("Status server")
struct StatusServerTests {
    static let logger: Logger = {
        var logger = Logger(label: "status-server-test")
        logger.logLevel = .warning
        return logger
    }()

    /// A readiness the test sets by hand.
    final class ReadinessSwitch: Sendable {
        let current = Mutex<Readiness>(.ready)
        func set(_ value: Readiness) { current.withLock { $0 = value } }
        var value: Readiness { current.withLock { $0 } }
    }

    /// Starts a server on a free port, runs `body`, and always closes it.
    static func withServer<T>(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), readiness: ReadinessSwitch = ReadinessSwitch(),
        configure: (inout StatusServerConfiguration) -> Void = { _ in }, _ body: (StatusServer) async throws -> T
    ) async throws -> T {
        var configuration = StatusServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = try await StatusServer.start(
            configuration: configuration, registry: registry, readiness: { readiness.value }, logger: Self.logger)
        defer { server.close() }
        return try await body(server)
    }

    @Test("port 0 binds a free port, and /healthz answers 200 ok")
    func healthz() async throws {
        try await Self.withServer { server in
            #expect(server.port > 0)
            let response = try await RawHTTPClient.get(port: server.port, "/healthz")
            #expect(response.status == 200)
            #expect(response.body == "ok\n")
        }
    }

    @Test("/readyz is 200 ready, or 503 with the reason, as the readiness source says at each request")
    func readyz() async throws {
        let readiness = ReadinessSwitch()
        try await Self.withServer(readiness: readiness) { server in
            readiness.set(.notReady("starting"))
            let starting = try await RawHTTPClient.get(port: server.port, "/readyz")
            #expect(starting.status == 503)
            #expect(starting.body == "starting\n")
            readiness.set(.ready)
            let ready = try await RawHTTPClient.get(port: server.port, "/readyz")
            #expect(ready.status == 200)
            #expect(ready.body == "ready\n")
            readiness.set(.readyWithWarning("qemu-jail=off: QEMU runs unjailed as root"))
            let warned = try await RawHTTPClient.get(port: server.port, "/readyz")
            #expect(warned.status == 200)
            #expect(warned.body == "ready (warning: qemu-jail=off: QEMU runs unjailed as root)\n")
        }
    }

    @Test("a warning shows only while ready: not-ready reasons come first")
    func readinessFromHealth() {
        #expect(Readiness(notReadyReason: nil, warning: nil) == .ready)
        #expect(Readiness(notReadyReason: nil, warning: "w") == .readyWithWarning("w"))
        #expect(Readiness(notReadyReason: "draining", warning: "w") == .notReady("draining"))
    }

    @Test("/metrics is the registry's exposition with Prometheus' content type; a query string is ignored")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusBackend.factory(registry: registry)
        Counter(label: "test_requests_total", dimensions: [("kind", "a")], factory: factory).increment(by: 2)
        try await Self.withServer(registry: registry) { server in
            let response = try await RawHTTPClient.get(port: server.port, "/metrics?x=1")
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(response.body.contains("# TYPE test_requests_total counter\n"))
            #expect(response.body.contains("test_requests_total{kind=\"a\"} 2\n"))
        }
    }

    @Test("an unknown path is 404")
    func notFound() async throws {
        try await Self.withServer { server in
            let response = try await RawHTTPClient.get(port: server.port, "/admin")
            #expect(response.status == 404)
        }
    }

    @Test("a method other than GET is 405 with Allow: GET, and the server closes the connection")
    func methodNotAllowed() async throws {
        try await Self.withServer { server in
            // Keep-alive asked for: the close is the server's own decision.
            let response = try await RawHTTPClient.exchange(
                port: server.port, "POST /metrics HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n")
            #expect(response.status == 405)
            #expect(response.header("allow") == "GET")
            #expect(response.closedByServer)
        }
    }

    @Test("a request head over the limit is refused with 431 and the connection closed")
    func headTooLarge() async throws {
        try await Self.withServer(configure: { $0.maxHeadBytes = 1024 }) { server in
            let padding = String(repeating: "a", count: 4096)
            let response = try await RawHTTPClient.exchange(
                port: server.port, "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-padding: \(padding)\r\n")
            #expect(response.status == 431)
            #expect(response.closedByServer)
            #expect(response.responseCount == 1)
        }
    }

    @Test("the head limit counts each request on a connection apart: two heads under it together above it both answer")
    func headLimitPerRequest() async throws {
        try await Self.withServer(configure: { $0.maxHeadBytes = 1024 }) { server in
            let padding = String(repeating: "b", count: 700)
            let first = "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-padding: \(padding)\r\n\r\n"
            let second = "GET /readyz HTTP/1.1\r\nhost: localhost\r\nx-padding: \(padding)\r\nconnection: close\r\n\r\n"
            let response = try await RawHTTPClient.exchange(port: server.port, first + second)
            #expect(response.responseCount == 2)
            #expect(response.text.contains("ok\n") && response.text.contains("ready\n"))
            #expect(!response.text.contains("431"))
        }
    }

    @Test("a malformed request gets 400 and the connection closed")
    func badRequest() async throws {
        try await Self.withServer { server in
            let response = try await RawHTTPClient.exchange(port: server.port, "NOT HTTP AT ALL\r\n\r\n")
            #expect(response.status == 400)
            #expect(response.closedByServer)
        }
    }

    @Test("a connection that sends nothing is closed by the server after the idle timeout")
    func idleConnection() async throws {
        try await Self.withServer(configure: { $0.idleTimeout = .milliseconds(200) }) { server in
            let response = try await RawHTTPClient.exchange(port: server.port, "")
            #expect(response.closedByServer)
            #expect(response.text.isEmpty)
        }
    }

    @Test("graceful shutdown of its service group closes open connections and the listener")
    func gracefulShutdown() async throws {
        try await Self.withServer { server in
            let group = ServiceGroup(configuration: .init(services: [server], logger: Self.logger))
            let running = Task { try await group.run() }
            // A keep-alive connection that has had its answer and stays open.
            let open = try await RawHTTPClient.connect(port: server.port)
            let afterShutdown = try await open.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n"))
                var iterator = inbound.makeAsyncIterator()
                var answer = ""
                while !answer.hasSuffix("\r\n\r\nok\n"), let chunk = try await iterator.next() {
                    answer += String(buffer: chunk)
                }
                #expect(answer.hasPrefix("HTTP/1.1 200"))
                await group.triggerGracefulShutdown()
                try await running.value
                return try await iterator.next()
            }
            #expect(afterShutdown == nil, "the server closed the open connection")
            #expect(await RawHTTPClient.statusServerAnswers(port: server.port) == false, "the listener is closed")
        }
    }
}
