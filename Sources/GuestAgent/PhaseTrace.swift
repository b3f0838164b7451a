import AgentProtocol
import Glibc

/// Where the agent's time goes while it serves one request (``RunRequest/tracePhases``), for the
/// benchmark's breakdown of a job inside the guest. Off unless a request asks: then each `mark` costs
/// one clock read. A global because the agent is single-threaded and the marks sit in every layer.
enum PhaseTrace {
    nonisolated(unsafe) private static var marks: [(name: String, nanoseconds: UInt64)] = []
    nonisolated(unsafe) private static var enabled = false

    /// Starts a trace whose first phase ends now and began `readAt`, when the request's bytes were read.
    static func begin(readAt: UInt64) {
        marks = [("read", readAt)]
        enabled = true
        mark("decode")
    }

    /// Stops tracing; what was marked stays for ``phases``.
    static func disable() { enabled = false }

    static func mark(_ name: StaticString) {
        guard enabled else { return }
        marks.append(("\(name)", Posix.monotonicNanoseconds()))
    }

    /// Each mark with the time since the one before.
    static var phases: [AgentPhase] {
        zip(marks.dropFirst(), marks).map { AgentPhase(name: $0.name, microseconds: Int(($0.nanoseconds - $1.nanoseconds) / 1000)) }
    }
}
