import Foundation
import RESP
import TestSupport
import Testing

@testable import JobQueue

@Suite("Reaper: jobs of dead workers")
struct ReaperTests {
    @Test func deadWorkersJobsReturnToTheHeadWithDeliveryCounted() async throws {
        try await withQueueRedis { redis in
            let dead = redis.mortalQueue("dead")
            let reaper = redis.queue("reaper")
            let other = #"{"id":"other","command":"true"}"#
            try await redis.push(seed)
            let claimed = try #require(try await dead.claim(timeout: .seconds(2)))
            #expect(claimed.deliveries == 1)
            try await redis.push(other)

            // Alive: nothing happens.
            try await dead.heartbeat()
            let early = try await reaper.reapDeadWorkers()
            #expect(early == ReapReport(acquiredLock: true))
            #expect(try await redis.list("jobs:processing:dead") == [seed])

            try await redis.waitForDeath(of: dead)
            let report = try await reaper.reapDeadWorkers()
            #expect(report == ReapReport(acquiredLock: true, deadWorkers: ["dead"], requeued: 1))
            #expect(try await redis.list("jobs") == [seed, other])
            #expect(try await redis.list("jobs:processing:dead").isEmpty)
            #expect(try await redis.send("SISMEMBER", "jobs:workers", "dead") == .integer(0))
            #expect(try await redis.send("HVALS", "jobs:deliveries").strings() == ["1"])

            let again = try #require(try await reaper.claim(timeout: .seconds(2)))
            #expect(again.payload == Array(seed.utf8))
            #expect(again.deliveries == 2)
            try await reaper.finish(again, outcome: .failed(reason: "x", result: nil))
            #expect(try await redis.send("HLEN", "jobs:deliveries") == .integer(0))
        }
    }

    @Test func onlyOneReaperActsAtATime() async throws {
        try await withQueueRedis { redis in
            let dead = redis.mortalQueue("dead")
            try await redis.push(seed)
            _ = try await dead.claim(timeout: .seconds(2))
            try await redis.waitForDeath(of: dead)

            // Another worker holds the lock: this pass must not touch anything.
            try await redis.send("SET", "jobs:reaper:lock", "someone-else", "PX", 10_000)
            let blocked = try await redis.queue("r1").reapDeadWorkers()
            #expect(blocked == ReapReport(acquiredLock: false))
            #expect(try await redis.list("jobs:processing:dead") == [seed])
            #expect(try await redis.send("GET", "jobs:reaper:lock").string() == "someone-else")
            try await redis.send("DEL", "jobs:reaper:lock")

            // Racing reapers: the job comes back exactly once.
            let reapers = (1...4).map { redis.queue("r\($0)") }
            let reports = try await withThrowingTaskGroup(of: ReapReport.self) { group in
                for reaper in reapers { group.addTask { try await reaper.reapDeadWorkers() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.map(\.requeued).reduce(0, +) == 1)
            #expect(try await redis.list("jobs") == [seed])
            #expect(try await redis.send("EXISTS", "jobs:reaper:lock") == .integer(0))
        }
    }

    @Test func threeDeliveriesLeadToTheDeadLetterList() async throws {
        try await withQueueRedis { redis in
            let reaper = redis.queue("reaper")
            try await redis.push(seed)
            var last: (queue: JobQueue, claimed: ClaimedJob)?
            for attempt in 1...3 {
                let worker = redis.mortalQueue("dead\(attempt)")
                let claimed = try #require(try await worker.claim(timeout: .seconds(2)))
                #expect(claimed.deliveries == attempt)
                try await worker.publish(.received, for: claimed)
                try await redis.waitForDeath(of: worker)
                let report = try await reaper.reapDeadWorkers()
                #expect(report.requeued == (attempt < 3 ? 1 : 0))
                #expect(report.deadLettered == (attempt < 3 ? 0 : 1))
                last = (worker, claimed)
            }
            #expect(try await redis.list("jobs").isEmpty)
            #expect(try await redis.list("jobs:dead") == [seed])
            let list = try await redis.list("666")
            #expect(Array(list.prefix(5)) == ["received", "received", "received", "failed", "abandoned after 3 attempts"])
            #expect(list.count == 6)
            let record = try decodeObject(list[5])
            #expect(record["attempt"] == 3)
            #expect(record["status"] == "failed")
            #expect(try await redis.send("TTL", "666").integer() > 86_000)
            #expect(try await redis.send("HLEN", "jobs:deliveries") == .integer(0))

            // The last worker was only slow: its late result must not become a second terminal status.
            let (zombie, claimed) = try #require(last)
            #expect(try await zombie.finish(claimed, outcome: .failed(reason: "late", result: nil)) == false)
            #expect(try await redis.list("666").count == 6)
        }
    }

    @Test func aJobFinishedByASlowWorkerIsNotRunAgain() async throws {
        try await withQueueRedis { redis in
            let slow = redis.mortalQueue("slow")
            let other = redis.queue("other")
            try await redis.push(seed)
            let claimed = try #require(try await slow.claim(timeout: .seconds(2)))
            try await redis.waitForDeath(of: slow)
            #expect(try await other.reapDeadWorkers().requeued == 1)
            // The slow worker was alive after all and finishes first.
            #expect(try await slow.finish(claimed, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())))
            // The redelivered copy is dropped at claim time, never returned.
            #expect(try await other.claim(timeout: .milliseconds(300)) == nil)
            #expect(try await redis.list("jobs").isEmpty)
            #expect(try await redis.list("jobs:processing:other").isEmpty)
            #expect(try await redis.list("666").filter { $0 == "done" || $0 == "failed" }.count == 1)
        }
    }

    @Test func orphanProcessingListsAreFoundWithoutRegistration() async throws {
        try await withQueueRedis { redis in
            // A worker unregistered by a reaper, which then claimed a job and died before re-registering.
            try await redis.push(seed, to: "jobs:processing:ghost")
            let report = try await redis.queue("reaper").reapDeadWorkers()
            #expect(report.deadWorkers == ["ghost"])
            #expect(try await redis.list("jobs") == [seed])
        }
    }

    @Test func maintenanceHeartbeatsAndReaps() async throws {
        try await withQueueRedis { redis in
            let dead = redis.mortalQueue("dead")
            try await redis.push(seed)
            _ = try await dead.claim(timeout: .seconds(2))
            let worker = redis.queue("live") {
                // Long enough that a loaded machine cannot let the live worker's own heartbeat lapse.
                $0.heartbeatTTL = .seconds(5)
                $0.reaperInterval = .milliseconds(100)
            }
            let maintenance = Task { await worker.runMaintenance() }
            defer { maintenance.cancel() }
            // The dead worker's 2 s heartbeat lapses, and a reaper pass every 100 ms finds it soon after.
            let reaped = try await eventually(timeout: .seconds(20)) { try await !redis.list("jobs").isEmpty }
            #expect(reaped)
            #expect(try await redis.list("jobs") == [seed])
            #expect(try await redis.send("SISMEMBER", "jobs:workers", "live") == .integer(1))
            #expect(try await redis.send("EXISTS", "jobs:worker:live:alive") == .integer(1))
            maintenance.cancel()
            await maintenance.value
        }
    }
}
