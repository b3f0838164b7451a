/// A parsed `CONNECT host:port HTTP/1.x` request head. Header fields are checked for syntax and then
/// ignored: the proxy needs nothing from them (no authentication, no Host routing).
public struct ConnectRequest: Equatable, Sendable, CustomStringConvertible {
    public var host: ConnectHost
    public var port: UInt16
    public var version: HTTPVersion

    public init(host: ConnectHost, port: UInt16, version: HTTPVersion = .http11) {
        self.host = host
        self.port = port
        self.version = version
    }

    /// `host:port` as the authority form writes it (IPv6 in brackets).
    public var description: String { "\(host):\(port)" }
}

/// The host part of a CONNECT target.
public enum ConnectHost: Equatable, Sendable, CustomStringConvertible {
    /// A DNS name, lowercased, as the client wrote it (a trailing dot is kept).
    case name(String)
    /// A literal address: dotted-quad IPv4 or bracketed IPv6.
    case address(IPAddress)

    public var description: String {
        switch self {
        case .name(let name): name
        case .address(let address): address.authorityForm
        }
    }
}

public enum HTTPVersion: String, Equatable, Sendable {
    case http10 = "HTTP/1.0"
    case http11 = "HTTP/1.1"
}

/// Why a request head was refused; `status` is the HTTP status the proxy answers with.
public struct RequestHeadError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Not HTTP, or not a well-formed CONNECT: 400.
        case malformed
        /// Well-formed HTTP but not CONNECT (plain-HTTP proxying is not offered): 405.
        case methodNotAllowed
        /// No end of head within the size cap: 431.
        case tooLarge
    }

    public var kind: Kind
    /// Says what is wrong; safe to show the client (it never echoes the client's bytes unescaped).
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var status: HTTPStatus {
        switch kind {
        case .malformed: .badRequest
        case .methodNotAllowed: .methodNotAllowed
        case .tooLarge: .requestHeaderFieldsTooLarge
        }
    }

    public var description: String { "\(status.code): \(message)" }
}
