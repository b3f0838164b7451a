import NIOHTTP1
import Prometheus

/// The answer to one request, before it becomes HTTP.
struct StatusResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType = "text/plain; charset=utf-8"
    var body: [UInt8]
    /// Sent after content-type and content-length.
    var headers: [(name: String, value: String)] = []
    /// False for errors that say the client is confused (405): closing is cheaper than guessing
    /// what else it will send.
    var keepAlive = true

    init(_ status: HTTPResponseStatus, _ text: String) {
        self.status = status
        self.body = Array((text + "\n").utf8)
    }
}

/// A response ready now, or one that must wait for something slower than an event loop may (Redis).
enum StatusAnswer: Sendable {
    case now(StatusResponse)
    case later(@Sendable () async -> StatusResponse)
}

/// `/`, `/fleet.json`, `/metrics`, `/healthz`, `/readyz`; everything else is 404, and any method but GET 405.
struct StatusRoutes: Sendable {
    /// The Prometheus text format's content type, as scrapers expect it.
    static let exposition = "text/plain; version=0.0.4; charset=utf-8"
    static let paths: Set<String> = ["/", "/fleet.json", "/metrics", "/healthz", "/readyz"]

    let registry: PrometheusCollectorRegistry
    let readiness: @Sendable () -> Readiness
    /// The fleet's JSON for `/fleet.json`; nil answers 404 there (the dashboard then shows only this worker's metrics).
    let fleet: (@Sendable () async throws -> String)?
    /// Bound to loopback: the dashboard and the fleet answer only requests whose Host is an address or `localhost`,
    /// so a web page that rebinds its own name to 127.0.0.1 cannot read them from an operator's browser.
    let refuseNamedHosts: Bool

    func respond(to head: HTTPRequestHead) -> StatusAnswer {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard Self.paths.contains(path) else {
            return .now(StatusResponse(.notFound, "not found"))
        }
        guard head.method == .GET else {
            var response = StatusResponse(.methodNotAllowed, "method not allowed")
            response.keepAlive = false
            return .now(response)
        }
        if path == "/" || path == "/fleet.json", refuseNamedHosts, !Self.isAddressOrLocalhost(head.headers.first(name: "host")) {
            return .now(StatusResponse(.forbidden, "forbidden: on loopback the dashboard answers only Host: 127.0.0.1, [::1] or localhost"))
        }
        switch path {
        case "/":
            return .now(Self.dashboard())
        case "/fleet.json":
            guard let fleet else { return .now(StatusResponse(.notFound, "not found: this server has no fleet status")) }
            return .later { await Self.fleetResponse(fleet) }
        case "/metrics":
            var response = StatusResponse(.ok, "")
            response.body = registry.emitToBuffer()
            response.contentType = Self.exposition
            return .now(response)
        case "/healthz":
            // Liveness: answering at all is the signal; a dead event loop answers nothing.
            return .now(StatusResponse(.ok, "ok"))
        default:
            switch readiness() {
            case .ready: return .now(StatusResponse(.ok, "ready"))
            // Still "ready" first: probes that match the body's start keep working.
            case .readyWithWarning(let warning): return .now(StatusResponse(.ok, "ready (warning: \(warning))"))
            case .notReady(let reason): return .now(StatusResponse(.serviceUnavailable, reason))
            }
        }
    }

    static func dashboard() -> StatusResponse {
        // A fresh nonce per response: the policy then admits exactly this page's script and style.
        let nonce = (0..<2).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined()
        var response = StatusResponse(.ok, "")
        response.body = Array(DashboardPage.html(nonce: nonce).utf8)
        response.contentType = "text/html; charset=utf-8"
        response.headers = [
            ("content-security-policy", DashboardPage.contentSecurityPolicy(nonce: nonce)),
            ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"), ("cache-control", "no-store"),
        ]
        return response
    }

    static func fleetResponse(_ fleet: @Sendable () async throws -> String) async -> StatusResponse {
        do {
            var response = StatusResponse(.ok, "")
            response.body = Array(try await fleet().utf8)
            response.contentType = "application/json"
            response.headers = [("x-content-type-options", "nosniff"), ("cache-control", "no-store")]
            return response
        } catch {
            return StatusResponse(.serviceUnavailable, "fleet status unavailable: \(error)")
        }
    }

    /// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464` (any IPv4 literal, any bracketed IPv6): what a rebinding
    /// attacker's page cannot send, since its requests carry the attacker's host name.
    static func isAddressOrLocalhost(_ host: String?) -> Bool {
        guard let host = host?.lowercased(), !host.isEmpty else { return false }
        if host.hasPrefix("[") { return host.contains("]") }
        let name = host.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if name == "localhost" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { UInt8($0) != nil }
    }
}
