/// What happened to one client connection: returned by ``serve(client:options:)`` and written to the log.
public struct ConnectionReport: Equatable, Sendable {
    public var outcome: ConnectionOutcome
    /// The CONNECT target as requested (`example.com:443`, `[2001:db8::1]:443`); nil if no valid head arrived.
    public var target: String?
    /// The upstream address the tunnel went to; nil if none was connected.
    public var address: IPAddress?
    /// Bytes relayed from the client (including any sent with the request head) and to it.
    public var bytesUp = 0
    public var bytesDown = 0
    public var duration: Duration = .zero

    public init(outcome: ConnectionOutcome, target: String? = nil, address: IPAddress? = nil) {
        self.outcome = outcome
        self.target = target
        self.address = address
    }

    /// The HTTP status the client was sent; nil if it left before getting one.
    public var status: HTTPStatus? {
        switch outcome {
        case .refused(let status, _): status
        case .tunnel: .connectionEstablished
        case .clientLeft: nil
        }
    }

    /// 1 for a refused request, 0 otherwise (a tunnel that ran, however it ended, or a client that left).
    public var exitCode: Int32 {
        if case .refused = outcome { return 1 }
        return 0
    }

    /// The log line's fields, `key=value` separated by spaces (the reason last, as it has spaces).
    public var logFields: String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let decision: String
        var reason: String? = nil
        switch outcome {
        case .refused(_, let why):
            decision = "refused"
            reason = why
        case .tunnel(let end):
            decision = "tunnel end=\(end.logName)"
            if case .failed(let why) = end { reason = why }
        case .clientLeft(let why):
            decision = "client-left"
            reason = why
        }
        var fields = "target=\(target ?? "-") address=\(address.map { "\($0)" } ?? "-")"
        fields += " status=\(status.map { "\($0.code)" } ?? "-") decision=\(decision)"
        fields += " up=\(bytesUp) down=\(bytesDown) ms=\(milliseconds)"
        if let reason { fields += " reason=\(reason)" }
        return fields
    }
}

/// The three ways a connection goes.
public enum ConnectionOutcome: Equatable, Sendable {
    /// The proxy answered with an error status and closed; the reason is also the response body.
    case refused(HTTPStatus, reason: String)
    /// The proxy answered 200 and relayed bytes until the tunnel ended.
    case tunnel(TunnelEnd)
    /// The client closed or failed before there was anything to answer (or before the answer was sent).
    case clientLeft(reason: String)
}

extension TunnelEnd {
    var logName: String {
        switch self {
        case .closed: "closed"
        case .idleTimeout: "idle-timeout"
        case .byteCapReached: "byte-cap"
        case .failed: "failed"
        }
    }
}
