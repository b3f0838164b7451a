import Foundation
import RESP
import Testing

@testable import JobQueue

/// The attacks of issue 11 on the queue, with a real redis-server: a payload is read once, by the worker, and every
/// script uses the id the worker read; one id runs one job at a time; a status list we did not start is never written.
/// A worker "dies" by never heartbeating again (``QueueTestRedis/mortalQueue(_:)``).
@Suite("One reading of a job, one job per id")
struct OneReadingOfAJobTests {
    func invalidEntries(_ redis: QueueTestRedis) async throws -> [[String: JSONValue]] {
        try await redis.list("jobs:invalid").map(decodeObject)
    }

    /// `{"id":"diffA","id":"t1",...}` with t1 finished and the worker killed: the reaper once read the last id (t1),
    /// found it finished and dropped the job, leaving diffA at `received, running` forever.
    @Test func aDuplicateIDIsNeverReadAsTheOtherJobsID() async throws {
        try await withQueueRedis { redis in
            let reaper = redis.queue("reaper")
            try await redis.push(#"{"id":"t1","command":"true"}"#)
            let t1 = try #require(try await reaper.claim(timeout: .seconds(2)))
            try await reaper.finish(t1, outcome: .done(stdout: [], stderr: [], result: JobResultRecord()))
            let t1Statuses = try await redis.list("t1")

            let hostile = #"{"id":"diffA","id":"t1","command":"sleep 25; echo finished"}"#
            let victim = redis.mortalQueue("victim")
            try await redis.push(hostile)
            let claimed = try #require(try await victim.claim(timeout: .seconds(2)))
            #expect(claimed.id == nil)
            #expect(try await redis.send("HGET", "jobs:ids", try await redis.sha1(Array(hostile.utf8))).string() == "")
            try await redis.waitForDeath(of: victim)

            let report = try await reaper.reapDeadWorkers()
            #expect(report.requeued == 1)
            #expect(report.alreadyFinished == 0)
            let again = try #require(try await reaper.claim(timeout: .seconds(2)))
            guard case .failure(let invalid) = again.job else { Issue.record("accepted \(hostile)"); return }
            #expect(invalid.code == .duplicateKey)
            try await reaper.rejectInvalid(again, invalid)

            #expect(try await invalidEntries(redis).map { $0["code"] } == [.string("duplicate_key")])
            #expect(try await redis.list("t1") == t1Statuses)
            #expect(try await redis.send("EXISTS", "diffA") == .integer(0))
        }
    }

    /// `{"id":"diffC","id":"victimY",...}` killed three times: the reaper once dead-lettered it as victimY (a forged
    /// `failed` and terminal marker on victimY), and a later genuine victimY was dropped as already finished.
    @Test func aDuplicateIDKilledThreeTimesForgesNothing() async throws {
        try await withQueueRedis { redis in
            let reaper = redis.queue("reaper")
            let hostile = #"{"id":"diffC","id":"victimY","command":"sleep 25"}"#
            try await redis.push(hostile)
            for attempt in 1...3 {
                let worker = redis.mortalQueue("w\(attempt)")
                let claimed = try #require(try await worker.claim(timeout: .seconds(2)))
                #expect(claimed.deliveries == attempt)
                try await redis.waitForDeath(of: worker)
                _ = try await reaper.reapDeadWorkers()
            }
            #expect(try await redis.list("jobs:dead") == [hostile])
            #expect(try await redis.send("EXISTS", "victimY", "diffC", "jobs:terminal:victimY", "jobs:terminal:diffC") == .integer(0))

            try await redis.push(#"{"id":"victimY","command":"true"}"#)
            let genuine = try #require(try await reaper.claim(timeout: .seconds(2)))
            #expect(genuine.id == "victimY")
            #expect(try await reaper.finish(genuine, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())))
            #expect(try await redis.list("victimY").first == "done")
        }
    }

    /// The same id submitted twice at once used to run twice, with the second payload's output under the first's id.
    @Test(arguments: [false, true])
    func aSecondPayloadWithAnIDInFlightIsRefused(secondArrivesFirst: Bool) async throws {
        try await withQueueRedis { redis in
            let first = #"{"id":"same","command":"echo first"}"#
            let second = #"{"id":"same","command":"echo second"}"#
            let (running, refused) = secondArrivesFirst ? (second, first) : (first, second)
            try await redis.push(running, refused)
            let w1 = redis.queue("w1")
            let w2 = redis.queue("w2")
            let claimed = try #require(try await w1.claim(timeout: .seconds(2)))
            #expect(claimed.payload == Array(running.utf8))
            try await w1.publish(.received, for: claimed)
            #expect(try await w2.claim(timeout: .milliseconds(300)) == nil)

            let entries = try await invalidEntries(redis)
            #expect(entries.map { $0["code"] } == [.string("duplicate_id_in_flight")])
            #expect(entries.first?["payload"] == .string(refused))
            #expect(try await redis.list("jobs:processing:w2").isEmpty)
            #expect(try await redis.list("same") == ["received"])

            #expect(try await w1.finish(claimed, outcome: .done(stdout: Array("out".utf8), stderr: [], result: JobResultRecord())))
            #expect(try await redis.list("same").prefix(3) == ["received", "done", "out"])
            #expect(try await redis.send("EXISTS", "jobs:inflight:same") == .integer(0))
        }
    }

    /// Identical bytes twice at once are two submissions, not a redelivery: the second waits for nothing, it is refused.
    @Test func theSamePayloadTwiceAtOnceRunsOnce() async throws {
        try await withQueueRedis { redis in
            let payload = #"{"id":"twin","command":"true"}"#
            try await redis.push(payload, payload)
            let worker = redis.queue("w1")
            let claimed = try #require(try await worker.claim(timeout: .seconds(2)))
            #expect(try await worker.claim(timeout: .milliseconds(300)) == nil)
            #expect(try await redis.list("jobs:processing:w1") == [payload])
            #expect(try await invalidEntries(redis).map { $0["code"] } == [.string("duplicate_id_in_flight")])
            #expect(try await worker.finish(claimed, outcome: .failed(reason: "x", result: nil)))
        }
    }

    /// Redeliveries still work: after a worker death, a drain's requeue, and a lost claim reply.
    @Test func redeliveriesOfTheSamePayloadAreNotDuplicates() async throws {
        try await withQueueRedis { redis in
            let payload = #"{"id":"again","command":"true"}"#
            try await redis.push(payload)
            let reaper = redis.queue("reaper")

            // A worker died after `received`: the status list is ours, the next delivery runs.
            let dead = redis.mortalQueue("dead")
            let first = try #require(try await dead.claim(timeout: .seconds(2)))
            try await dead.publish(.received, for: first)
            try await redis.waitForDeath(of: dead)
            #expect(try await reaper.reapDeadWorkers().requeued == 1)
            #expect(try await redis.send("EXISTS", "jobs:inflight:again") == .integer(0))

            // A drain gives it back.
            let draining = redis.queue("draining")
            let second = try #require(try await draining.claim(timeout: .seconds(2)))
            #expect(second.deliveries == 2)
            #expect(try await draining.requeue(second))

            // A claim whose reply was lost: the worker holds nothing, so the entry is an orphan.
            let third = try #require(try await draining.claim(timeout: .seconds(2)))
            #expect(third.id == "again")
            #expect(try await draining.requeueOrphans(holding: []) == 1)

            let last = try #require(try await reaper.claim(timeout: .seconds(2)))
            #expect(last.id == "again")
            #expect(try await reaper.finish(last, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())))
            #expect(try await redis.list("again").first == "received")
            #expect(try await redis.list("again").filter { $0 == "done" }.count == 1)
            #expect(try await redis.send("HLEN", "jobs:ids") == .integer(0))
        }
    }

    /// A worker that died with a job leaves its in-flight key behind until the reaper runs: a second payload with
    /// that id is not refused for a dead owner, and the first, reaped later, is then the duplicate. One of the two
    /// runs; exactly one terminal status is published.
    @Test func anInFlightKeyOfADeadWorkerDoesNotBlockTheID() async throws {
        try await withQueueRedis { redis in
            let first = #"{"id":"x","command":"echo 1"}"#
            let second = #"{"id":"x","command":"echo 2"}"#
            try await redis.push(first)
            let dead = redis.mortalQueue("dead")
            _ = try #require(try await dead.claim(timeout: .seconds(2)))
            try await redis.waitForDeath(of: dead)

            try await redis.push(second)
            let alive = redis.queue("alive")
            let running = try #require(try await alive.claim(timeout: .seconds(2)))
            #expect(running.payload == Array(second.utf8))

            #expect(try await alive.reapDeadWorkers().requeued == 1)
            #expect(try await redis.queue("other").claim(timeout: .milliseconds(300)) == nil)
            #expect(try await invalidEntries(redis).first?["payload"] == .string(first))
            #expect(try await alive.finish(running, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())))
            #expect(try await redis.list("x").filter { $0 == "done" || $0 == "failed" }.count == 1)
        }
    }

    /// A platform's own list whose name equals a job id: once our statuses were appended to it, with a 24 h TTL.
    @Test func aStatusListWeDidNotStartIsNeverWritten() async throws {
        try await withQueueRedis { redis in
            try await redis.send("RPUSH", "platform-list", "platform-data")
            try await redis.push(#"{"id":"platform-list","command":"true"}"#)
            let worker = redis.queue("w1")
            #expect(try await worker.claim(timeout: .milliseconds(300)) == nil)
            #expect(try await redis.list("platform-list") == ["platform-data"])
            #expect(try await redis.send("TTL", "platform-list") == .integer(-1))
            let entries = try await invalidEntries(redis)
            #expect(entries.map { $0["code"] } == [.string("status_list_not_ours")])
            #expect(entries.first?["reason"]?.stringValue?.contains("status-key-prefix") == true)
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
        }
    }

    /// Whatever the payload, the id every script uses is the one the worker read: the reaper and the claim check
    /// get it from `jobs:ids`, written at claim from the worker's own reading. Generated payloads, through Redis.
    @Test func theScriptsUseTheIDTheWorkerRead() async throws {
        try await withQueueRedis { redis in
            let worker = redis.queue("w1")
            var generator = PayloadGenerator(seed: 11)
            for _ in 0..<300 {
                let payload = generator.next()
                try await redis.send("RPUSH", "jobs", payload)
                guard let claimed = try await worker.claim(timeout: .seconds(2)) else { continue }
                let recorded = try await redis.send("HGET", "jobs:ids", try await redis.sha1(claimed.payload)).string()
                #expect(recorded == (claimed.id ?? ""), "\(String(decoding: claimed.payload, as: UTF8.self))")
                switch claimed.job {
                case .success: try await worker.finish(claimed, outcome: .failed(reason: "x", result: nil))
                case .failure(let invalid): try await worker.rejectInvalid(claimed, invalid)
                }
            }
            #expect(try await redis.send("HLEN", "jobs:ids") == .integer(0))
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
        }
    }
}

extension QueueTestRedis {
    /// The field the scripts key a payload by, computed by Redis itself.
    func sha1(_ payload: [UInt8]) async throws -> String {
        try await send("EVAL", "return redis.sha1hex(ARGV[1])", 0, payload).string()
    }
}

extension JSONValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
