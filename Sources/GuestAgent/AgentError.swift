import Glibc

/// Why the agent could not do something. Never crosses the wire as is: the server maps it to an
/// ``AgentProtocol/AgentErrorReply`` or to an `internal_error` verdict.
struct AgentError: Error, CustomStringConvertible {
    enum Code: String {
        /// A system call failed; the message names it and carries errno's text.
        case system
        /// The request is well-formed but outside what the agent accepts.
        case invalidRequest = "invalid_request"
    }

    var code: Code
    var message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A failed system call; `errno` is read at the call site by default, so build this right after the call.
    static func system(_ operation: String, errno err: Int32 = errno) -> AgentError {
        AgentError(.system, "\(operation): \(String(cString: strerror(err))) (errno \(err))")
    }

    /// A language the image's registry does not have (the host's view of the image is stale or wrong).
    static func unknownLanguage(_ name: String, known: [String]) -> AgentError {
        AgentError(.invalidRequest, "this image has no language '\(name)' (it has: \(known.joined(separator: ", ")))")
    }

    var description: String { "\(code.rawValue): \(message)" }
}
