import FoundationEssentials

/// QMP's byte stream cut into lines (one JSON object each), whatever reads the socket: the NIO
/// session (``QMPClient``) and the blocking descriptor hand-over (``QMPDescriptorHandOver``).
/// Bounded, so a misbehaving peer cannot grow it without end.
struct QMPLines {
    static let maximumLineBytes = 1 << 20

    /// Bytes after the last complete line.
    private(set) var pending: [UInt8]

    init(pending: [UInt8] = []) {
        self.pending = pending
    }

    mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        pending += bytes
    }

    /// The next non-empty line, trailing CRs and spaces trimmed; nil until one is complete. Throws
    /// when the bytes without a newline already exceed the bound.
    mutating func next() throws(QMPClient.Failure) -> String? {
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            while let last = line.last, last == "\r" || last == " " { line.removeLast() }
            if !line.isEmpty { return line }
        }
        guard pending.count < Self.maximumLineBytes else { throw QMPClient.Failure(description: "QMP line longer than 1 MiB") }
        return nil
    }

    /// The name of the event `line` announces (`{"timestamp": …, "event": "RESUME"}`); nil for replies.
    static func eventName(_ line: String) -> String? {
        struct Event: Decodable { var event: String }
        guard line.hasPrefix("{"), !line.hasPrefix(#"{"return""#), !line.hasPrefix(#"{"error""#) else { return nil }
        return try? JSONDecoder().decode(Event.self, from: Data(line.utf8)).event
    }

    /// Whether `line` is the reply to `command`: true for a `return`, a throw with QEMU's description
    /// for an `error`, false for anything else (an asynchronous event).
    static func isReply(_ line: String, to command: String) throws(QMPClient.Failure) -> Bool {
        if line.hasPrefix(#"{"return""#) { return true }
        if line.hasPrefix(#"{"error""#) { throw QMPClient.Failure(description: "QMP \(command) failed: \(line)") }
        return false
    }
}
