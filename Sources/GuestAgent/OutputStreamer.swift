import AgentProtocol

/// Where a step's streamed output goes: the stream, the offset of the bytes in it, the bytes.
typealias OutputSink = (OutputStreamKind, Int, ArraySlice<UInt8>) -> Void

/// Sends a step's output to the host while the step runs (``RunRequest/streamOutput``, revision 3).
///
/// Only the bytes an ``OutputCollector`` kept are sent, so the chunks of a stream never exceed its output
/// limit and end up equal to the result's output. A stream's new bytes go out at once after a quiet
/// spell, then at most every ``OutputChunk/minimumIntervalMilliseconds`` while the program keeps
/// writing: a client sees output that late at worst, and a flood costs the agent one frame per
/// interval per stream, not one per read.
struct OutputStreamer {
    let sink: OutputSink
    /// When each stream (stdout, stderr) last sent, on the monotonic clock; 0: never.
    private var lastSent = [0, 0]

    init(sink: @escaping OutputSink) { self.sink = sink }

    /// Sends what each collector has not sent yet, if its interval is over (or `force`: the step ended).
    mutating func flush(_ stdout: inout OutputCollector, _ stderr: inout OutputCollector, now: Int, force: Bool = false) {
        flush(&stdout, .stdout, slot: 0, now: now, force: force)
        flush(&stderr, .stderr, slot: 1, now: now, force: force)
    }

    /// How long the step loop may sleep in poll() before a pending chunk is due; nil when none is pending.
    func millisecondsUntilDue(_ stdout: OutputCollector, _ stderr: OutputCollector, now: Int) -> Int? {
        var due: Int?
        for (slot, pending) in [stdout.hasUnsent, stderr.hasUnsent].enumerated() where pending {
            let wait = max(0, lastSent[slot] + OutputChunk.minimumIntervalMilliseconds - now)
            due = min(due ?? wait, wait)
        }
        return due
    }

    private mutating func flush(_ collector: inout OutputCollector, _ stream: OutputStreamKind, slot: Int, now: Int, force: Bool) {
        guard collector.hasUnsent, force || now - lastSent[slot] >= OutputChunk.minimumIntervalMilliseconds else { return }
        while collector.hasUnsent {
            let (offset, bytes) = collector.unsent(maximum: OutputChunk.maximumDataBytes)
            sink(stream, offset, bytes)
            collector.markSent(bytes.count)
        }
        lastSent[slot] = now
    }
}
