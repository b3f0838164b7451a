import Logging
import Observability
import Prometheus
import TestSupport
import Testing

/// `/` (the dashboard page) and `/fleet.json` over real loopback sockets; the page in a browser is in WorkerTests.
@Suite("Status server: dashboard and fleet")
struct DashboardRouteTests {
    struct RedisAway: Error, CustomStringConvertible {
        var description: String { "redis unreachable" }
    }

    static func withServer<T>(
        fleet: (@Sendable () async throws -> String)?, host: String = "127.0.0.1", _ body: (StatusServer) async throws -> T
    ) async throws -> T {
        let server = try await StatusServer.start(
            configuration: StatusServerConfiguration(host: host, port: 0), registry: PrometheusCollectorRegistry(),
            readiness: { .ready }, fleet: fleet, logger: StatusServerTests.logger)
        defer { server.close() }
        return try await body(server)
    }

    static func get(_ server: StatusServer, _ path: String, host: String = "127.0.0.1") async throws -> RawHTTPResponse {
        try await RawHTTPClient.exchange(port: server.port, "GET \(path) HTTP/1.1\r\nhost: \(host)\r\nconnection: close\r\n\r\n")
    }

    @Test("/ is one self-contained HTML page whose script and style carry the nonce its policy admits, fresh per response")
    func pageAndPolicy() async throws {
        try await Self.withServer(fleet: nil) { server in
            let page = try await Self.get(server, "/")
            #expect(page.status == 200)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.header("x-content-type-options") == "nosniff")
            let policy = try #require(page.header("content-security-policy"))
            let nonce = try #require(policy.split(separator: "'").first { $0.hasPrefix("nonce-") }).dropFirst("nonce-".count)
            #expect(page.body.contains("<script nonce=\"\(nonce)\">"))
            #expect(page.body.contains("<style nonce=\"\(nonce)\">"))
            #expect(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"))
            // Nothing is loaded from elsewhere, and data never goes through markup.
            #expect(!page.body.contains("http://") && !page.body.contains("https://") && !page.body.contains("src="))
            #expect(!page.body.contains("innerHTML") && !page.body.contains("insertAdjacentHTML"))
            let again = try await Self.get(server, "/")
            #expect(again.header("content-security-policy") != policy)
        }
    }

    @Test("/fleet.json serves what the fleet source returns, 503 with the reason when it throws, 404 without one")
    func fleetJSON() async throws {
        try await Self.withServer(fleet: { #"{"version":1,"workers":[]}"# }) { server in
            let fleet = try await Self.get(server, "/fleet.json")
            #expect(fleet.status == 200)
            #expect(fleet.header("content-type") == "application/json")
            #expect(fleet.body == #"{"version":1,"workers":[]}"#)
        }
        try await Self.withServer(fleet: { throw RedisAway() }) { server in
            let fleet = try await Self.get(server, "/fleet.json")
            #expect(fleet.status == 503)
            #expect(fleet.body == "fleet status unavailable: redis unreachable\n")
        }
        try await Self.withServer(fleet: nil) { server in
            let missing = try await Self.get(server, "/fleet.json")
            #expect(missing.status == 404)
        }
    }

    @Test("a slow fleet source does not reorder pipelined answers on one connection")
    func pipelinedAfterSlowFleet() async throws {
        try await Self.withServer(fleet: {
            try await Task.sleep(for: .milliseconds(300))
            return "{}"
        }) { server in
            let request = "GET /fleet.json HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
            let response = try await RawHTTPClient.exchange(port: server.port, request)
            #expect(response.responseCount == 2)
            let fleetAt = try #require(response.text.range(of: "{}"))
            let okAt = try #require(response.text.range(of: "\r\n\r\nok\n"))
            #expect(fleetAt.lowerBound < okAt.lowerBound, "\(response.text)")
        }
    }

    @Test("on loopback, the dashboard and the fleet refuse a named Host (DNS rebinding); addresses and localhost pass")
    func rebindingRefused() async throws {
        try await Self.withServer(fleet: { "{}" }) { server in
            for path in ["/", "/fleet.json"] {
                let named = try await Self.get(server, path, host: "attacker.example:\(server.port)")
                #expect(named.status == 403)
                let local = try await Self.get(server, path, host: "localhost:\(server.port)")
                #expect(local.status == 200)
                let address = try await Self.get(server, path, host: "[::1]:\(server.port)")
                #expect(address.status == 200)
            }
            // Scrapers keep working whatever Host they send.
            let metrics = try await Self.get(server, "/metrics", host: "attacker.example")
            #expect(metrics.status == 200)
        }
    }
}
