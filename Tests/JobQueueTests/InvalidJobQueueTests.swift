import Foundation
import RESP
import Testing

@testable import JobQueue

@Suite("Invalid payloads reach the right list")
struct InvalidJobQueueTests {
    /// Payloads whose id cannot be read: reported on jobs:invalid.
    static let withoutID: [(payload: String, reason: String)] = [
        ("not json {", "invalid job: payload is not valid JSON: invalid literal (expected null) at byte 0"),
        ("[1,2]", "invalid job: payload must be a JSON object, got array"),
        (#"{"command":"ls"}"#, "invalid job: field 'id' is missing"),
        (#"{"id":666,"command":"ls"}"#, "invalid job: field 'id' must be a string, got number"),
        (#"{"id":"\#(String(repeating: "x", count: 300))","command":"ls"}"#,
         "invalid job: field 'id' is 300 bytes long, the maximum is 256"),
        (#"{"id":"a\tb","command":"ls"}"#, "invalid job: field 'id' must not contain control characters"),
        (String(repeating: "z", count: 3000), "invalid job: payload is 3000 bytes, the maximum is 2048"),
    ]

    static let bigPayload = #"{"id":"big","command":"\#(String(repeating: "x", count: 3000))"}"#

    /// Payloads with a readable id: `failed` + reason on their own list.
    static let withID: [(payload: String, id: String, reason: String)] = [
        (bigPayload, "big", "invalid job: payload is \(bigPayload.utf8.count) bytes, the maximum is 2048"),
        (#"{"id":"lang","language":"cobol","code":"x"}"#, "lang",
         "invalid job: field 'language' has unknown language 'cobol' (known: python, c, cpp, bash)"),
        (#"{"id":"both","command":"ls","language":"c","code":"x"}"#, "both",
         "invalid job: fields 'command' and 'code' are mutually exclusive"),
        (#"{"id":"neither"}"#, "neither", "invalid job: one of the fields 'command' or 'code' is required"),
        (#"{"id":"cmd","command":42}"#, "cmd", "invalid job: field 'command' must be a string, got number"),
        (#"{"id":"stdin","command":"ls","stdin":5}"#, "stdin", "invalid job: field 'stdin' must be a string, got number"),
        (#"{"id":"timeout","command":"ls","timeout_ms":"1s"}"#, "timeout",
         "invalid job: field 'timeout_ms' must be a positive integer, got string"),
        (#"{"id":"limits","command":"ls","limits":{"memory_mb":0}}"#, "limits",
         "invalid job: field 'limits.memory_mb' must be a positive integer, got 0"),
        (#"{"id":"net","command":"ls","network":"yes"}"#, "net", "invalid job: field 'network' must be a boolean, got string"),
        // Once `not_json` on jobs:invalid, although the id is readable (900 levels: within this queue's 2 KiB).
        (#"{"id":"deep","command":"ls","stdin":"# + String(repeating: "[", count: 900) + String(repeating: "]", count: 900) + "}",
         "deep", "invalid job: field 'stdin' nests deeper than 64 levels"),
        (#"{"id":"twice","command":"ls","command":"rm -rf /"}"#, "twice", "invalid job: key 'command' appears more than once"),
    ]

    @Test func everyBadInputIsReportedWithItsReason() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.maximumPayloadBytes = 2048 }
            for (payload, reason) in Self.withoutID {
                try await redis.push(payload)
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                guard case .failure(let invalid) = claimed.job else {
                    Issue.record("accepted \(payload)")
                    continue
                }
                #expect(invalid.reason == reason)
                #expect(try await queue.rejectInvalid(claimed, invalid))
                let entry = try decodeObject(try #require(try await redis.list("jobs:invalid").last))
                #expect(entry["reason"] == .string(reason))
                #expect(entry["payload"] == .string(String(payload.prefix(JobParser.rawPrefixBytes))))
                #expect(entry["payload_bytes"] == .int(payload.utf8.count))
                #expect(entry["truncated"] == .bool(payload.utf8.count > JobParser.rawPrefixBytes))
                #expect(entry["worker_id"] == "w1")
            }
            #expect(try await redis.list("jobs:invalid").count == Self.withoutID.count)

            for (payload, id, reason) in Self.withID {
                try await redis.push(payload)
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                guard case .failure(let invalid) = claimed.job else {
                    Issue.record("accepted \(payload)")
                    continue
                }
                #expect(try await queue.rejectInvalid(claimed, invalid))
                let list = try await redis.list(id)
                #expect(list.count == 3)
                #expect(Array(list.prefix(2)) == ["failed", reason])
                let record = try decodeObject(list[2])
                #expect(record["status"] == "failed")
                #expect(record["message"] == .string(reason))
            }
            // Nothing with an id went to the invalid list, nothing is left in processing.
            #expect(try await redis.list("jobs:invalid").count == Self.withoutID.count)
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
        }
    }

    /// Issue 11: nested 100 000 levels deep with a readable id, it once went to jobs:invalid as `not_json`.
    @Test func aPayloadNested100000LevelsFailsOnItsOwnList() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            let nesting = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            try await redis.push(#"{"id":"deeper","command":"ls","stdin":"# + nesting + "}")
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            guard case .failure(let invalid) = claimed.job else { Issue.record("accepted"); return }
            #expect(try await queue.rejectInvalid(claimed, invalid))
            #expect(try await redis.list("deeper").prefix(2) == ["failed", "invalid job: field 'stdin' nests deeper than 64 levels"])
            #expect(try await redis.list("jobs:invalid").isEmpty)
        }
    }

    @Test func idsNamingTheQueuesOwnKeysAreRefused() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            for id in ["jobs", "jobs:dead", "jobs:processing:w1"] {
                try await redis.push(#"{"id":"\#(id)","command":"ls"}"#)
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                #expect(claimed.id == nil)
                guard case .failure(let invalid) = claimed.job else {
                    Issue.record("accepted id \(id)")
                    continue
                }
                #expect(invalid.reason == "invalid job: field 'id' makes the status list '\(id)' collide with the queue's own keys")
                #expect(try await queue.rejectInvalid(claimed, invalid))
            }
            #expect(try await redis.list("jobs:invalid").count == 3)
            #expect(try await redis.list("jobs").isEmpty)
            #expect(try await redis.list("jobs:dead").isEmpty)
            // With a prefix the same id is an ordinary job.
            let prefixed = redis.queue("w2") { $0.statusKeyPrefix = "worker_job_status_" }
            try await redis.push(#"{"id":"jobs","command":"ls"}"#)
            let claimed = try #require(try await prefixed.claim(timeout: .seconds(2)))
            #expect(try claimed.job.get().id == "jobs")
        }
    }

    /// A status key that exists before the claim is someone else's: refused at claim, before a VM could boot.
    @Test func aStatusKeyOfAnotherTypeBeforeTheClaimIsNotOurs() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.send("SET", "666", "not a list")
            try await redis.push(seed)
            #expect(try await queue.claim(timeout: .milliseconds(300)) == nil)
            #expect(try await redis.send("GET", "666").string() == "not a list")
            #expect(try await redis.send("TTL", "666") == .integer(-1))
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
            let entry = try decodeObject(try #require(try await redis.list("jobs:invalid").last))
            #expect(entry["code"] == "status_list_not_ours")
            #expect(entry["payload"] == .string(seed))
        }
    }

    /// A status key replaced by another type while the job runs cannot be answered there.
    @Test func aStatusKeyOfAnotherTypeAfterTheClaimEndsTheJobOnTheInvalidList() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            try await redis.send("SET", "666", "not a list")
            #expect(try await queue.publish(.received, for: claimed) == false)
            #expect(try await queue.finish(claimed, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())) == false)
            #expect(try await redis.send("GET", "666").string() == "not a list")
            #expect(try await redis.send("EXISTS", "jobs:terminal:666") == .integer(0))
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
            let entry = try decodeObject(try #require(try await redis.list("jobs:invalid").last))
            #expect(entry["reason"] == "status key '666' holds another type than a list; outcome was 'done'")
            #expect(entry["payload"] == .string(seed))
        }
    }

    @Test func variantAliasIsAcceptedThroughTheQueue() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(#"{"id":"v","variant":"python3","code":"print(1)"}"#)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            #expect(try claimed.job.get().workload == .program(language: .python, source: "print(1)"))
        }
    }

    @Test func invalidListIsTrimmed() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.invalidListMaxLength = 2 }
            for index in 0..<3 {
                try await redis.push("garbage \(index)")
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                guard case .failure(let invalid) = claimed.job else { throw QueueTestFailure("accepted garbage") }
                try await queue.rejectInvalid(claimed, invalid)
            }
            let entries = try await redis.list("jobs:invalid").map(decodeObject)
            #expect(entries.map { $0["payload"] } == ["garbage 1", "garbage 2"])
        }
    }
}
