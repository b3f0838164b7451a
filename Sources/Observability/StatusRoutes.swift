import NIOHTTP1
import Prometheus

/// The answer to one request, before it becomes HTTP.
struct StatusResponse {
    var status: HTTPResponseStatus
    var contentType = "text/plain; charset=utf-8"
    var body: [UInt8]
    /// False for errors that say the client is confused (405): closing is cheaper than guessing
    /// what else it will send.
    var keepAlive = true

    init(_ status: HTTPResponseStatus, _ text: String) {
        self.status = status
        self.body = Array((text + "\n").utf8)
    }
}

/// `/metrics`, `/healthz`, `/readyz`; everything else is 404, and any method but GET 405.
struct StatusRoutes: Sendable {
    /// The Prometheus text format's content type, as scrapers expect it.
    static let exposition = "text/plain; version=0.0.4; charset=utf-8"

    let registry: PrometheusCollectorRegistry
    let readiness: @Sendable () -> Readiness

    func respond(to head: HTTPRequestHead) -> StatusResponse {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard ["/metrics", "/healthz", "/readyz"].contains(path) else {
            return StatusResponse(.notFound, "not found")
        }
        guard head.method == .GET else {
            var response = StatusResponse(.methodNotAllowed, "method not allowed")
            response.keepAlive = false
            return response
        }
        switch path {
        case "/metrics":
            var response = StatusResponse(.ok, "")
            response.body = registry.emitToBuffer()
            response.contentType = Self.exposition
            return response
        case "/healthz":
            // Liveness: answering at all is the signal; a dead event loop answers nothing.
            return StatusResponse(.ok, "ok")
        default:
            switch readiness() {
            case .ready: return StatusResponse(.ok, "ready")
            // Still "ready" first: probes that match the body's start keep working.
            case .readyWithWarning(let warning): return StatusResponse(.ok, "ready (warning: \(warning))")
            case .notReady(let reason): return StatusResponse(.serviceUnavailable, reason)
            }
        }
    }
}
