import Foundation
import RESP
import RedisClient
import TestSupport
import Testing

@testable import JobQueue

let seed = #"{"id":"666","command":"uname -a"}"#

@Suite("Job queue against a real redis-server")
struct JobQueueTests {
    @Test func claimMovesTheSeedJobToTheProcessingList() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            #expect(try claimed.job.get() == JobRequest(id: "666", workload: .shell(command: "uname -a")))
            #expect(claimed.deliveries == 1)
            #expect(claimed.payload == Array(seed.utf8))
            #expect(try await redis.list("jobs").isEmpty)
            #expect(try await redis.list("jobs:processing:w1") == [seed])
            #expect(try await redis.send("SISMEMBER", "jobs:workers", "w1") == .integer(1))
            #expect(try await redis.send("PTTL", "jobs:worker:w1:alive").integer() > 0)
        }
    }

    @Test func claimTimesOutOnAnEmptyIntake() async throws {
        try await withQueueRedis { redis in
            let claimed = try await redis.queue("w1").claim(timeout: .milliseconds(200))
            #expect(claimed == nil)
        }
    }

    @Test func finishPublishesOneTerminalPushAndLeavesProcessing() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.send("CONFIG", "SET", "notify-keyspace-events", "Kl")
            try await redis.push(seed)
            try await withSubscriber(redis, channels: ["__keyspace@0__:666"]) { keyspace in
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                #expect(try await queue.publish(.received, for: claimed))
                #expect(try await queue.publish(.running, for: claimed))
                let record = JobResultRecord(verdict: "ok", exitCode: 0, wallMilliseconds: 12, vmm: "qemu")
                let published = try await queue.finish(
                    claimed, outcome: .done(stdout: Array("Linux\n".utf8), stderr: [], result: record))
                #expect(published)

                let list = try await redis.list("666")
                #expect(Array(list.prefix(5)) == ["received", "running", "done", "Linux\n", ""])
                #expect(list.count == 6)
                let json = try decodeObject(list[5])
                #expect(json["id"] == "666")
                #expect(json["status"] == "done")
                #expect(json["verdict"] == "ok")
                #expect(json["exit_code"] == 0)
                #expect(json["vmm"] == "qemu")
                #expect(json["worker_id"] == "w1")
                #expect(json["attempt"] == 1)
                // Three RPUSH commands in all: the four terminal elements went in one.
                let events = try await keyspace.waitForMessages(3)
                #expect(events == ["rpush", "rpush", "rpush"])
                #expect(try await redis.list("jobs:processing:w1").isEmpty)
                #expect(try await redis.send("EXISTS", "jobs:terminal:666") == .integer(1))
            }
        }
    }

    @Test func statusListAndMarkerGetTheTTL() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.statusTTL = .seconds(600) }
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            try await queue.publish(.received, for: claimed)
            let afterReceived = try await redis.send("TTL", "666").integer()
            #expect(afterReceived > 590 && afterReceived <= 600)
            try await queue.finish(claimed, outcome: .failed(reason: "no VM", result: nil))
            #expect(try await redis.send("TTL", "666").integer() > 590)
            #expect(try await redis.send("TTL", "jobs:terminal:666").integer() > 590)
            let list = try await redis.list("666")
            #expect(Array(list.prefix(3)) == ["received", "failed", "no VM"])
            #expect(list.count == 4)
            #expect(try decodeObject(list[3])["message"] == "no VM")
        }
    }

    @Test func defaultStatusTTLIsOneDay() {
        #expect(QueueConfiguration(workerID: "w").statusTTLSeconds == 86_400)
    }

    @Test func aSecondFinishPublishesNothing() async throws {
        try await withQueueRedis { redis in
            let first = redis.queue("w1")
            let second = redis.queue("w2")
            // The same job delivered to two workers: the first was wrongly declared dead, and the reaper, taking its
            // job back to the intake, released the job's in-flight key.
            try await redis.push(seed, seed)
            let a = try #require(try await first.claim(timeout: .seconds(2)))
            try await redis.send("DEL", "jobs:inflight:666")
            let b = try #require(try await second.claim(timeout: .seconds(2)))
            #expect(try await first.finish(a, outcome: .done(stdout: Array("one".utf8), stderr: [], result: JobResultRecord())))
            #expect(try await second.finish(b, outcome: .failed(reason: "two", result: nil)) == false)
            #expect(try await first.finish(a, outcome: .failed(reason: "again", result: nil)) == false)
            // Non-terminal statuses are refused after the terminal one.
            #expect(try await second.publish(.running, for: b) == false)
            let list = try await redis.list("666")
            #expect(list.count == 4)
            #expect(Array(list.prefix(3)) == ["done", "one", ""])
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
            #expect(try await redis.list("jobs:processing:w2").isEmpty)
        }
    }

    @Test func scriptsSurviveAScriptCacheFlush() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            try await queue.publish(.received, for: claimed)
            // As after a Redis restart: EVALSHA fails with NOSCRIPT and the client falls back to EVAL.
            try await redis.send("SCRIPT", "FLUSH")
            #expect(try await queue.finish(claimed, outcome: .failed(reason: "x", result: nil)))
            #expect(Array(try await redis.list("666").prefix(3)) == ["received", "failed", "x"])
        }
    }

    @Test func aClaimedJobSurvivesARedisCrashWithAppendOnly() async throws {
        try await withQueueRedis(RedisServerOptions(appendOnly: true)) { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            try await queue.publish(.received, for: claimed)
            // SIGKILL and start again on the same port and data directory.
            try await redis.server.restart()
            #expect(try await redis.list("jobs:processing:w1") == [seed])
            #expect(try await queue.finish(claimed, outcome: .failed(reason: "x", result: nil)))
            #expect(Array(try await redis.list("666").prefix(3)) == ["received", "failed", "x"])
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
        }
    }

    @Test func publishRefusesTerminalStatuses() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            await #expect(throws: JobQueueError.self) { try await queue.publish(.done, for: claimed) }
            #expect(try await redis.list("666").isEmpty)
        }
    }

    @Test func statusKeyPrefixWorksWithABLPOPReader() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1") { $0.statusKeyPrefix = "worker_job_status_" }
            // The platform's reader: BLPOP until the terminal status and its elements arrived.
            let reader = Task {
                var seen: [String] = []
                while seen.count < 6 {
                    let pair = try await redis.client.send(RedisCommand("BLPOP", "worker_job_status_666", 5), as: [String]?.self) ?? []
                    guard pair.count == 2 else { throw QueueTestFailure("BLPOP timed out after \(seen)") }
                    seen.append(pair[1])
                }
                return seen
            }
            try await redis.push(seed)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            try await queue.publish(.received, for: claimed)
            try await queue.publish(.running, for: claimed)
            try await queue.finish(claimed, outcome: .done(stdout: Array("out".utf8), stderr: Array("err".utf8), result: JobResultRecord()))
            let seen = try await reader.value
            #expect(Array(seen.prefix(5)) == ["received", "running", "done", "out", "err"])
            #expect(try decodeObject(seen[5])["status"] == "done")
            #expect(try await redis.send("EXISTS", "666") == .integer(0))
        }
    }

    @Test func everyStatusIsPublishedOnTheEventsChannel() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            try await redis.push(seed)
            try await withSubscriber(redis, channels: ["codebench:events:666"]) { subscriber in
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                try await queue.publish(.received, for: claimed)
                try await queue.publish(.running, for: claimed)
                let record = JobResultRecord(verdict: "runtime_error", exitCode: 3)
                try await queue.finish(claimed, outcome: .done(stdout: [], stderr: [], result: record))
                let events = try await subscriber.waitForMessages(3).map(decodeObject)
                #expect(events.map { $0["status"] } == ["received", "running", "done"])
                #expect(events.allSatisfy { $0["id"] == "666" && $0["worker_id"] == "w1" && $0["attempt"] == 1 })
                #expect(events[2]["verdict"] == "runtime_error")
                #expect(events[2]["exit_code"] == 3)
            }
        }
    }

    @Test func requeuePutsAJobBackAtTheHead() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            let second = #"{"id":"2","command":"true"}"#
            try await redis.push(seed, second)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            #expect(try await queue.requeue(claimed))
            #expect(try await redis.list("jobs") == [seed, second])
            #expect(try await redis.list("jobs:processing:w1").isEmpty)
            // Not ours any more: a second requeue must not duplicate it.
            #expect(try await queue.requeue(claimed) == false)
            #expect(try await redis.list("jobs") == [seed, second])
        }
    }

    @Test func shutdownReturnsHeldJobsAndUnregisters() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            let second = #"{"id":"2","command":"true"}"#
            let third = #"{"id":"3","command":"true"}"#
            try await redis.push(seed, second, third)
            _ = try await queue.claim(timeout: .seconds(2))
            _ = try await queue.claim(timeout: .seconds(2))
            #expect(try await queue.shutdown() == 2)
            #expect(try await redis.list("jobs") == [seed, second, third])
            #expect(try await redis.send("SISMEMBER", "jobs:workers", "w1") == .integer(0))
            #expect(try await redis.send("EXISTS", "jobs:worker:w1:alive") == .integer(0))
        }
    }
}
