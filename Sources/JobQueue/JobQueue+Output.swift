import RESP
import RedisClient

extension QueueScripts {
    /// Appends a batch of output entries to a job's stream in one round trip, trimmed (`MAXLEN ~`, cheap:
    /// whole macro nodes only) and living as long as a status list.
    /// KEYS: output stream. ARGV: max length, ttl seconds, then (stream, seq, data) per entry.
    static let appendOutput = RedisScript("""
        for i = 3, #ARGV, 3 do
            redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'stream', ARGV[i], 'seq', ARGV[i + 1], 'data', ARGV[i + 2])
        end
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        return (#ARGV - 2) / 3
        """)
}

extension JobQueue {
    public func appendOutput(_ entries: [OutputStreamEntry], for id: String) async throws {
        guard !entries.isEmpty else { return }
        var arguments: [any RESPBulkStringEncodable] = [max(1, configuration.outputStreamMaxLength), configuration.statusTTLSeconds]
        for entry in entries {
            arguments.append(entry.kind.rawValue)
            arguments.append(entry.sequence)
            arguments.append(entry.data)
        }
        _ = try await integer(script: QueueScripts.appendOutput, keys: [configuration.outputStream(for: id)], arguments: arguments)
    }
}
