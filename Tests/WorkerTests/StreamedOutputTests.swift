import Foundation
import JobQueue
import RedisClient
import Testing

@testable import Worker

/// `"stream": true` end to end: real redis-server, real worker, real VMs (docs/wire-contract.md,
/// "Streamed output"). The platform's side is a plain `XREAD BLOCK` loop.
@Suite("Streamed output", .serialized)
struct StreamedOutputTests {
    /// Reads `codebench:output:<id>` from the start until its `end` entry, calling `onEntry` for each as it arrives.
    static func readStream(
        _ harness: WorkerHarness, _ id: String, onEntry: (OutputStreamEntry) async throws -> Void = { _ in }
    ) async throws -> [OutputStreamEntry] {
        var entries: [OutputStreamEntry] = []
        var lastID = "0-0"
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let reply = try await harness.client.send(
                RedisCommand("XREAD", "BLOCK", 5000, "STREAMS", "codebench:output:\(id)", lastID))
            for (entryID, entry) in OutputStreamEntry.entries(fromXREAD: reply) {
                lastID = entryID
                entries.append(entry)
                try await onEntry(entry)
                if entry.kind == .end { return entries }
            }
        }
        Issue.record("no end entry on codebench:output:\(id) within 120 s; got \(entries)")
        return entries
    }

    static func bytes(_ entries: [OutputStreamEntry], _ kind: OutputStreamEntry.Kind) -> [UInt8] {
        entries.filter { $0.kind == kind }.flatMap(\.data)
    }

    @Test("a streamed job's first output is in Redis before its terminal status, and the chunks add up to stdout")
    func firstChunkBeforeTheEnd() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"s1","command":"echo one; sleep 2; echo two; echo oops >&2","stream":true}"#)
            var terminalWhenFirstChunkRead: String?
            let entries = try await Self.readStream(harness, "s1") { entry in
                guard entry.kind == .stdout, terminalWhenFirstChunkRead == nil else { return }
                // The program is still asleep: no terminal marker, no done on the status list yet.
                terminalWhenFirstChunkRead = try harness.redisCLI("EXISTS", "jobs:terminal:s1")
                    + (try harness.redisCLI("LRANGE", "s1", "0", "-1"))
            }
            let seen = try #require(terminalWhenFirstChunkRead)
            #expect(seen.hasPrefix("0"), "terminal marker existed when the first chunk was read: \(seen)")
            #expect(!seen.contains("done"))
            #expect(entries.map(\.sequence) == Array(0..<entries.count))
            #expect(entries.last == OutputStreamEntry(kind: .end, sequence: entries.count - 1, data: Array("done".utf8)))
            #expect(entries.first.map { String(decoding: $0.data, as: UTF8.self) } == "one\n")

            let elements = try await harness.readStatuses("s1")
            #expect(Array(elements.prefix(3)) == ["received", "running", "done"])
            try #require(elements.count == 6)
            #expect(Self.bytes(entries, .stdout) == Array(elements[3].utf8))
            #expect(Self.bytes(entries, .stderr) == Array(elements[4].utf8))
            #expect(elements[3] == "one\ntwo\n")
        }
    }

    @Test("a flood is streamed only up to the output limit and ends with the usual output-limit failure")
    func flood() async throws {
        try await WorkerHarness.with { harness in
            let limit = 200_000
            try harness.push(#"{"id":"f1","command":"yes","stream":true,"limits":{"output_bytes":\#(limit),"wall_time_ms":20000}}"#)
            let entries = try await Self.readStream(harness, "f1")
            let stdout = Self.bytes(entries, .stdout)
            #expect(stdout.count <= limit)
            // Nothing dropped on the way (a notice would say so): the chunks are exactly what the agent kept.
            if !entries.contains(where: { $0.kind == .notice }) { #expect(stdout.count == limit) }
            #expect(stdout.allSatisfy { $0 == UInt8(ascii: "y") || $0 == UInt8(ascii: "\n") })
            #expect(entries.map(\.sequence) == Array(0..<entries.count))
            #expect(entries.last?.kind == .end && entries.last?.data == Array("failed".utf8))

            let elements = try await harness.readStatuses("f1")
            #expect(Array(elements.prefix(4)) == ["received", "running", "failed", "output limit of \(limit) bytes exceeded"])
        }
    }

    @Test("a job without stream publishes nothing")
    func notStreamed() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"n1","command":"echo plain"}"#)
            let elements = try await harness.readStatuses("n1")
            #expect(Array(elements.prefix(4)) == ["received", "running", "done", "plain\n"])
            #expect(try harness.redisCLI("EXISTS", "codebench:output:n1").hasPrefix("0"))
            #expect(try harness.redisCLI("KEYS", "codebench:output:*").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        }
    }
}
