/// The few HTTP statuses the proxy answers with.
public struct HTTPStatus: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String

    public init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let connectionEstablished = HTTPStatus(code: 200, reason: "Connection established")
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    public static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    public static let requestTimeout = HTTPStatus(code: 408, reason: "Request Timeout")
    public static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    public static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    public static let badGateway = HTTPStatus(code: 502, reason: "Bad Gateway")
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    public static let gatewayTimeout = HTTPStatus(code: 504, reason: "Gateway Timeout")

    public var description: String { "\(code) \(reason)" }
}

/// Builds the proxy's responses. Error responses carry a one-line plain-text body saying why, and
/// `Connection: close` because the proxy serves one request per connection.
public enum HTTPResponse {
    /// What a successful CONNECT gets, after which the connection is a raw tunnel.
    public static let established: [UInt8] = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    public static func error(_ status: HTTPStatus, _ message: String) -> [UInt8] {
        let body = message + "\n"
        var head = "HTTP/1.1 \(status)\r\n"
        if status == .methodNotAllowed { head += "Allow: CONNECT\r\n" }
        head += "Content-Type: text/plain; charset=utf-8\r\n"
        head += "Content-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\n\r\n"
        return Array((head + body).utf8)
    }
}
