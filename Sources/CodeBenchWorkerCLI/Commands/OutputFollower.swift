import Foundation
import JobQueue
import RedisClient

/// `submit --stream`: prints a job's output stream as it arrives, what a platform does with
/// `XREAD BLOCK … STREAMS codebench:output:<id> <last id>` (docs/wire-contract.md, "Streamed output").
/// Stops at the stream's `end` entry, or when the job's status list has its terminal status without one
/// (a job refused before it ran has no stream).
struct OutputFollower {
    let client: RedisClient
    let key: String
    let statusList: String
    let waitSeconds: Int

    /// One XREAD waits this long before the status list is looked at.
    static let blockMilliseconds = 1000

    func run() async throws {
        var lastID = "0-0"
        var quiet = 0
        while true {
            let reply = try await client.send(
                RedisCommand("XREAD", "COUNT", 100, "BLOCK", Self.blockMilliseconds, "STREAMS", key, lastID))
            let entries = OutputStreamEntry.entries(fromXREAD: reply)
            for (id, entry) in entries {
                lastID = id
                switch entry.kind {
                case .stdout, .stderr:
                    // Raw bytes (a chunk may end inside a character), after whatever print() buffered.
                    fflush(nil)
                    (entry.kind == .stdout ? FileHandle.standardOutput : FileHandle.standardError).write(Data(entry.data))
                case .notice: print("(stream: \(String(decoding: entry.data, as: UTF8.self)))")
                case .end:
                    print("--- end of streamed output (\(String(decoding: entry.data, as: UTF8.self))) ---")
                    return
                }
            }
            guard entries.isEmpty else {
                quiet = 0
                continue
            }
            quiet += 1
            if try await hasTerminalStatus() || quiet * Self.blockMilliseconds >= waitSeconds * 1000 { return }
        }
    }

    private func hasTerminalStatus() async throws -> Bool {
        let elements = try await client.send(RedisCommand("LRANGE", statusList, 0, -1), as: [String].self)
        return elements.contains { JobStatus(rawValue: $0)?.isTerminal == true }
    }
}
