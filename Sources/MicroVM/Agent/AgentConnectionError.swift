/// Internal failures of the agent channel; ``AgentConnection`` maps them to ``VMError`` for callers.
enum AgentConnectionError: Error, CustomStringConvertible {
    case handshake(String)
    case queueOverflow

    var description: String {
        switch self {
        case .handshake(let detail): return "vsock handshake failed: \(detail)"
        case .queueOverflow: return "the agent sent more unsolicited messages than the host buffers"
        }
    }
}
