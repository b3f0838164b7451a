import AgentProtocol
import Glibc

/// Where the agent's time goes while it serves one request (``RunRequest/tracePhases``) or resume
/// (``AgentResume/tracePhases``), for the
/// benchmark's breakdown of a job inside the guest. Off unless a request asks: then each `mark` costs
/// one clock read. A global because the agent is single-threaded and the marks sit in every layer.
enum PhaseTrace {
    /// Names stay `StaticString`s until ``phases``: turning each into a `String` as it is marked put
    /// the first string interpolation of a VM just restored (its translation by TCG) into the phase
    /// that happened to mark first, `decode`, which the job does not pay untraced.
    nonisolated(unsafe) private static var marks: [(name: StaticString, nanoseconds: UInt64)] = []
    nonisolated(unsafe) private static var enabled = false

    /// Starts a trace whose first phase began `readAt`, when the message's bytes were read, and ended
    /// `decodedAt`, when the frame and its JSON were decoded.
    static func begin(readAt: UInt64, decodedAt: UInt64) {
        marks.removeAll(keepingCapacity: true)
        marks.append(("read", readAt))
        marks.append(("decode", decodedAt))
        enabled = true
    }

    /// Once, at start-up (before any snapshot): the marks' storage, so that a trace in a VM just
    /// restored allocates nothing, and the first phase it marks is not charged with an array's
    /// allocation and its type's metadata, which an untraced request never pays.
    static func reserve() { marks.reserveCapacity(64) }

    /// Stops tracing; what was marked stays for ``phases``.
    static func disable() { enabled = false }

    static func mark(_ name: StaticString) {
        guard enabled else { return }
        marks.append((name, Posix.monotonicNanoseconds()))
    }

    /// Each mark with the time since the one before.
    static var phases: [AgentPhase] {
        zip(marks.dropFirst(), marks).map {
            AgentPhase(name: $0.name.description, microseconds: Int(($0.nanoseconds - $1.nanoseconds) / 1000))
        }
    }
}
