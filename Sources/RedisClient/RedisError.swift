/// Every failure the client reports: a server error reply, a connection problem, a timeout, a bad URL...
/// Match on ``code``; ``command`` names the command that failed when there is one.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// A stable category to match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The server answered with an error reply; ``RedisError/message`` holds it and ``RedisError/serverErrorPrefix`` its first word (`WRONGTYPE`, `NOSCRIPT`, ...).
        public static let serverError = Code("serverError")
        /// Wrong username/password, or the server requires a password that was not given.
        public static let authenticationFailed = Code("authenticationFailed")
        /// Could not open a connection (refused, unreachable, TLS handshake failed) after all reconnect attempts.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection closed while the command was in flight; it may or may not have run on the server.
        public static let connectionClosed = Code("connectionClosed")
        /// No reply within the command timeout; the connection was closed, so the reply can never be mistaken for another command's.
        public static let timeout = Code("timeout")
        /// The calling task was cancelled; a blocking command's connection was closed.
        public static let cancelled = Code("cancelled")
        /// The server sent bytes that are not valid RESP; the connection was closed.
        public static let protocolError = Code("protocolError")
        /// The URL or configuration cannot be used.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// MULTI/EXEC was discarded (EXECABORT: a queued command was rejected, or a WATCHed key changed).
        public static let transactionAborted = Code("transactionAborted")
        /// The command cannot be used through this client (e.g. MONITOR; SUBSCRIBE through ``RedisSubscription``).
        public static let unsupportedCommand = Code("unsupportedCommand")
        /// ``RedisClient/close()`` was called.
        public static let clientClosed = Code("clientClosed")
        /// The reply could not be decoded into the requested Swift type.
        public static let decodingFailed = Code("decodingFailed")

        public var description: String { name }
    }

    public var code: Code
    /// The command (first word) that failed, when the error belongs to one.
    public var command: String?
    /// What happened, or the server's error reply verbatim.
    public var message: String
    /// The error that caused this one (e.g. a NIO or TLS error), if any.
    public var underlying: (any Error)?

    public init(code: Code, command: String? = nil, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.command = command
        self.message = message
        self.underlying = underlying
    }

    /// First word of a server error reply, e.g. `ERR`, `WRONGTYPE`, `NOSCRIPT`, `WRONGPASS`.
    public var serverErrorPrefix: String? {
        guard code == .serverError || code == .authenticationFailed || code == .transactionAborted else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    public var description: String {
        var text = "Redis \(code)"
        if let command { text += " (\(command))" }
        text += ": " + message
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// Set when a request was rejected before any byte of it reached the socket, so it is safe to retry elsewhere.
    var wasNotSent: Bool = false
}
