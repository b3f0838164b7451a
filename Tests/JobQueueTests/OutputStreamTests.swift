import RESP
import RedisClient
import Testing

@testable import JobQueue

/// `"stream": true` (docs/wire-contract.md, "Streamed output"): the job field, and the Redis stream the
/// queue appends to and a platform reads back with XREAD.
@Suite("Streamed output")
struct OutputStreamTests {
    @Test func theStreamFieldIsAnOptionalBoolean() throws {
        #expect(try JobParser().parse(#"{"id":"a","command":"ls"}"#).get().stream == false)
        #expect(try JobParser().parse(#"{"id":"a","command":"ls","stream":true}"#).get().stream)
        #expect(try JobParser().parse(#"{"id":"a","command":"ls","stream":false}"#).get().stream == false)
        #expect(try JobParser().parse(#"{"id":"a","command":"ls","stream":null}"#).get().stream == false)
        for value in ["\"yes\"", "1", "{}", "[true]"] {
            guard case .failure(let invalid) = JobParser().parse(#"{"id":"a","command":"ls","stream":\#(value)}"#) else {
                Issue.record("stream \(value) was accepted")
                continue
            }
            #expect(invalid.reason.hasPrefix("invalid job: field 'stream' must be a boolean, got "), "\(invalid.reason)")
            #expect(invalid.id == "a")
        }
        guard case .failure(let invalid) = JobParser().parse(#"{"id":"a","command":"ls","stream":"yes"}"#) else { return }
        #expect(invalid.reason == "invalid job: field 'stream' must be a boolean, got string")
    }

    @Test func aStreamedJobsPayloadReadsBackTheSame() throws {
        var job = JobRequest(id: "s", workload: .shell(command: "echo hi"))
        job.stream = true
        #expect(job.payload.contains(#""stream":true"#))
        #expect(try JobParser().parse(job.payload).get() == job)
        job.stream = false
        #expect(!job.payload.contains("stream"))
    }

    @Test func appendedEntriesReadBackInOrderWithTheirBytesAndExpireWithTheStatuses() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.outputKeyPrefix = "out:" }
            let binary: [UInt8] = [0, 0xff, 0xc3, 10]
            try await queue.appendOutput([
                OutputStreamEntry(kind: .stdout, sequence: 0, data: Array("one\n".utf8)),
                OutputStreamEntry(kind: .stderr, sequence: 1, data: binary),
            ], for: "job-1")
            try await queue.appendOutput([OutputStreamEntry(kind: .end, sequence: 2, data: Array("done".utf8))], for: "job-1")
            try await queue.appendOutput([], for: "job-2")

            let reply = try await redis.client.send(RedisCommand("XREAD", "STREAMS", "out:job-1", "0-0"))
            let read = OutputStreamEntry.entries(fromXREAD: reply)
            #expect(read.map(\.entry) == [
                OutputStreamEntry(kind: .stdout, sequence: 0, data: Array("one\n".utf8)),
                OutputStreamEntry(kind: .stderr, sequence: 1, data: binary),
                OutputStreamEntry(kind: .end, sequence: 2, data: Array("done".utf8)),
            ])
            // Continuing after the first entry's id gives the rest: what a client that reconnects does.
            let after = try await redis.client.send(RedisCommand("XREAD", "STREAMS", "out:job-1", read[0].id))
            #expect(OutputStreamEntry.entries(fromXREAD: after).map(\.entry.sequence) == [1, 2])

            let ttl = try await redis.send("TTL", "out:job-1").integer()
            #expect(ttl > 0 && ttl <= queue.configuration.statusTTLSeconds)
            #expect(try await redis.send("EXISTS", "out:job-2") == .integer(0))
            // A BLOCK that times out is a nil reply: no entries.
            let empty = try await redis.client.send(RedisCommand("XREAD", "BLOCK", 10, "STREAMS", "out:none", "0-0"))
            #expect(OutputStreamEntry.entries(fromXREAD: empty).isEmpty)
        }
    }

    @Test func theStreamIsTrimmedToItsMaximumLength() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.outputStreamMaxLength = 10 }
            for batch in 0..<50 {
                let entries = (0..<10).map { OutputStreamEntry(kind: .stdout, sequence: batch * 10 + $0, data: [0x41]) }
                try await queue.appendOutput(entries, for: "long")
            }
            // MAXLEN ~ trims whole macro nodes (100 entries by default): far below 500, never below 10.
            let length = try await redis.send("XLEN", "codebench:output:long").integer()
            #expect(length >= 10 && length < 500, "\(length)")
        }
    }
}
