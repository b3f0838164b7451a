import FoundationEssentials

/// The first ``agentProtocolRevision`` whose agent answers ``RunRequest/streamOutput`` with ``OutputChunk``
/// messages. An older agent ignores the flag and answers with the result alone, which is still correct:
/// the host then publishes the output with the final status only.
public let outputStreamingRevision = 3

/// Which of the program's output streams a chunk belongs to.
public enum OutputStreamKind: String, Codable, Sendable, Equatable, CaseIterable {
    case stdout
    case stderr
}

/// Output of the running step, sent by the agent while a ``RunRequest`` with ``RunRequest/streamOutput``
/// runs (revision 3), at most every ``minimumInterval`` per stream while output comes, and once more with
/// what is left when the step ends, before the ``RunResult``.
///
/// The chunks of one stream are contiguous: `offset` is where `data` starts in that stream. Together they
/// are a prefix of (at the end: equal to) the result's `stdout` or `stderr`, never more than
/// ``ResourceLimits/maxOutputBytesPerStream``. The host checks all of this (``problem(expectedID:expectedOffset:limit:)``):
/// a guest is never trusted to keep it.
public struct OutputChunk: Codable, Sendable, Equatable {
    /// The ``RunRequest/id`` this output belongs to.
    public var id: String
    public var stream: OutputStreamKind
    /// Bytes of this stream sent before this chunk.
    public var offset: Int
    /// Base64 on the wire, like every `Data`.
    public var data: Data

    /// The agent sends a stream's new output when this much time has passed since its last chunk, so a
    /// client sees output at most this late (plus the host's publishing).
    public static let minimumIntervalMilliseconds = 100
    /// Largest `data` the agent puts in one chunk; a longer backlog goes as several chunks.
    public static let maximumDataBytes = 64 << 10

    public init(id: String, stream: OutputStreamKind, offset: Int, data: Data) {
        self.id = id
        self.stream = stream
        self.offset = offset
        self.data = data
    }

    /// Why the host must not take this chunk, or nil: it belongs to another request, does not start where
    /// the stream's previous chunk ended, is empty or too large, or would take the stream past `limit`.
    public func problem(expectedID: String, expectedOffset: Int, limit: Int) -> String? {
        if id != expectedID { return "an output chunk for another request" }
        if offset != expectedOffset {
            return "an output chunk of \(stream.rawValue) at offset \(offset), expected \(expectedOffset)"
        }
        if data.isEmpty { return "an empty output chunk of \(stream.rawValue)" }
        if data.count > Self.maximumDataBytes {
            return "an output chunk of \(data.count) bytes, the maximum is \(Self.maximumDataBytes)"
        }
        let (end, overflow) = offset.addingReportingOverflow(data.count)
        if overflow || end > limit {
            return "an output chunk taking \(stream.rawValue) past the output limit of \(limit) bytes"
        }
        return nil
    }
}

extension AgentHello {
    /// Whether this agent sends ``OutputChunk`` messages for a ``RunRequest/streamOutput`` request.
    public var streamsOutput: Bool { announcedRevision >= outputStreamingRevision }
}
