/// A failed call to the Firecracker API: the socket could not be reached, the call timed out,
/// the connection broke, or Firecracker refused the request (then `status` and `faultMessage` are set).
public struct FirecrackerAPIError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The API socket did not accept a connection.
        public static let connectFailed = Code("connect_failed")
        /// No complete reply within the request timeout.
        public static let timeout = Code("timeout")
        /// The connection closed before the reply was complete.
        public static let connectionClosed = Code("connection_closed")
        /// Firecracker answered 4xx/5xx.
        public static let httpError = Code("http_error")
        /// The calling task was cancelled; the connection was closed.
        public static let cancelled = Code("cancelled")
        /// A reply that is not what the spec promises (e.g. undecodable JSON).
        public static let invalidResponse = Code("invalid_response")
    }

    public var code: Code
    /// `PUT /drives/rootfs`, for messages.
    public var method: String
    public var path: String
    public var status: Int?
    /// Firecracker's own explanation (`{"fault_message": ...}`), verbatim.
    public var faultMessage: String?
    public var detail: String

    public init(_ code: Code, method: String, path: String, status: Int? = nil, faultMessage: String? = nil, detail: String) {
        self.code = code
        self.method = method
        self.path = path
        self.status = status
        self.faultMessage = faultMessage
        self.detail = detail
    }

    public var description: String {
        var text = "firecracker API \(method) \(path): \(code)"
        if let status { text += " (HTTP \(status))" }
        if let faultMessage { text += ": \(faultMessage)" } else if !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}
