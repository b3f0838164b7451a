import Foundation

/// Where the status HTTP server (`/metrics`, `/healthz`, `/readyz`) listens: `host:port`,
/// `[ipv6]:port`, or `off`. Port 0 picks a free port (for tests).
public enum StatusAddress: Sendable, Equatable, CustomStringConvertible {
    case off
    case listen(host: String, port: Int)

    /// Loopback only: metrics reveal load and timings, so exposing them is an operator's choice.
    public static let `default` = StatusAddress.listen(host: "127.0.0.1", port: 9464)

    /// Parses `host:port`, `[v6]:port` or `off`; nil for anything else.
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.lowercased() == "off" {
            self = .off
            return
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = Substring(text[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            // An IPv6 address without brackets is ambiguous with its port.
            return nil
        }
        guard let port = Int(text[text.index(after: colon)...]) else { return nil }
        self = .listen(host: String(host), port: port)
    }

    public var description: String {
        switch self {
        case .off: "off"
        case .listen(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Nil when usable, else why not.
    var problem: String? {
        guard case .listen(let host, let port) = self else { return nil }
        if host.isEmpty || host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            return "status-address '\(self)' needs a host (e.g. 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464) or off"
        }
        if !(0...65535).contains(port) { return "status-address '\(self)' has a port outside 0-65535" }
        return nil
    }
}
