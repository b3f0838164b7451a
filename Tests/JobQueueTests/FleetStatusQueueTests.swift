import Foundation
import Testing

@testable import JobQueue

/// `status` and `requeue-dead` at the queue level, on a real redis-server: what they read and what they reset.
@Suite("Fleet status and requeueing dead letters")
struct FleetStatusQueueTests {
    static func info(_ host: String) -> WorkerInfo {
        WorkerInfo(host: host, vmm: "qemu", pid: 42, version: "test", startedAtMilliseconds: 1_000, concurrency: 2)
    }

    /// A worker that dies by never heartbeating again, and whose jobs are dead-lettered at their first reaped delivery.
    static func doomed(_ redis: QueueTestRedis, _ id: String) -> JobQueue {
        redis.queue(id) {
            $0.heartbeatTTL = .seconds(2)
            $0.maxDeliveries = 1
        }
    }

    @Test func statusShowsDepthsWorkersWithTheirInfoAndRunningJobs() async throws {
        try await withQueueRedis { redis in
            let a = redis.queue("a")
            let b = redis.queue("b")
            await a.describe(Self.info("host-a"))
            await b.describe(Self.info("host-b"))
            try await redis.push(#"{"id":"j1","command":"true"}"#, #"{"id":"j2","command":"true"}"#)
            _ = try #require(try await a.claim(timeout: .seconds(2)))
            try await b.heartbeat()
            // The description lives exactly as long as the heartbeat.
            let infoTTL = try await redis.send("PTTL", "jobs:worker:a:info").integer()
            #expect(infoTTL > 0 && infoTTL <= 10_000, "\(infoTTL)")

            let status = try await redis.queue("reader").fleetStatus()
            #expect(status.workers.map(\.id) == ["a", "b"])
            let first = try #require(status.workers.first)
            #expect(first.alive && first.registered)
            #expect(try #require(first.heartbeatAgeMilliseconds) < 10_000)
            #expect(first.info?.host == "host-a" && first.info?.concurrency == 2 && first.info?.vmm == "qemu")
            #expect(first.jobs.map(\.id) == ["j1"])
            let claimedAt = try #require(first.jobs.first?.claimedAtMilliseconds)
            #expect(claimedAt <= status.generatedAtMilliseconds && status.generatedAtMilliseconds - claimedAt < 60_000)
            #expect(status.workers[1].jobs.isEmpty)
            let depths = status.queues.map { "\($0.role.rawValue) \($0.name) \($0.depth)" }
            #expect(depths == [
                "intake jobs 1", "processing jobs:processing:a 1", "processing jobs:processing:b 0", "invalid jobs:invalid 0",
                "dead jobs:dead 0",
            ])
            let json = status.json(observer: "a")
            #expect(json.contains(#""observer":"a""#) && json.contains(#""id":"j1""#) && json.contains(#""host":"host-a""#))

            // A clean exit takes the description with the heartbeat.
            try await b.shutdown()
            #expect(try await redis.send("EXISTS", "jobs:worker:b:info") == .integer(0))
        }
    }

    @Test func aDeadLetteredJobIsListedAndRequeuedWithEveryMarkerReset() async throws {
        try await withQueueRedis { redis in
            let payload = #"{"id":"p1","command":"true"}"#
            try await redis.push(payload)
            let victim = Self.doomed(redis, "victim")
            let claimed = try #require(try await victim.claim(timeout: .seconds(2)))
            try await victim.publish(.running, for: claimed)
            try await redis.waitForDeath(of: victim)
            let reaper = Self.doomed(redis, "reaper")
            #expect(try await reaper.reapDeadWorkers().deadLettered == 1)
            #expect(try await redis.list("p1").prefix(2) == ["running", "failed"])

            let status = try await reaper.fleetStatus()
            let letter = try #require(status.deadLetters.first)
            #expect(letter.id == "p1")
            #expect(letter.reason == "abandoned after 1 attempts")
            #expect(letter.attempts == 1 && letter.workerID == "victim")
            let deadAt = try #require(letter.deadAtMilliseconds)
            #expect(deadAt <= status.generatedAtMilliseconds)
            #expect(status.queues.last?.depth == 1)

            await #expect(throws: JobQueueError.self) { try await reaper.requeueDeadLetters(.id("p2")) }
            do {
                _ = try await reaper.requeueDeadLetters(.id("p2"))
            } catch let error as JobQueueError {
                #expect(error.code == .notDeadLettered)
                #expect(error.message.contains("'p2'") && error.message.contains("jobs:dead holds 1 job"))
            }

            #expect(try await reaper.requeueDeadLetters(.id("p1")) == [RequeuedDeadLetter(id: "p1", intake: "jobs")])
            #expect(try await redis.list("jobs") == [payload])
            #expect(try await redis.list("jobs:dead").isEmpty)
            for key in ["jobs:terminal:p1", "jobs:owned:p1", "p1", "jobs:inflight:p1"] {
                #expect(try await redis.send("EXISTS", key) == .integer(0), "\(key) was not reset")
            }
            for hash in ["jobs:deliveries", "jobs:ids", "jobs:dead-records"] {
                #expect(try await redis.send("HLEN", hash) == .integer(0), "\(hash) was not reset")
            }
            // Requeued twice is an error the second time, not a silent success.
            await #expect(throws: JobQueueError.self) { try await reaper.requeueDeadLetters(.id("p1")) }

            // It runs as a fresh submission: first delivery, one terminal status on a list of its own.
            let worker = redis.queue("worker")
            let again = try #require(try await worker.claim(timeout: .seconds(2)))
            #expect(again.deliveries == 1)
            #expect(try await worker.finish(again, outcome: .failed(reason: "ran again", result: nil)))
            let list = try await redis.list("p1")
            #expect(list.prefix(2) == ["failed", "ran again"])
        }
    }

    @Test func requeueAllMovesEveryEntryAndOldEntriesWithoutRecordsAreStillReadable() async throws {
        try await withQueueRedis { redis in
            // Dead-lettered before records existed: only the raw payload, its id read by the parser.
            try await redis.push(#"{"id":"old","command":"true"}"#, "not json", to: "jobs:dead")
            let reader = redis.queue("reader")
            let status = try await reader.fleetStatus(deadLetters: 5)
            #expect(status.deadLetters.map(\.id) == [nil, "old"])
            #expect(status.deadLetters.allSatisfy { $0.reason == nil })
            #expect(FleetStatusText.render(status).contains("(no readable id)"))

            #expect(try await reader.requeueDeadLetters(.all).map(\.id) == ["old", nil])
            #expect(try await redis.list("jobs") == [#"{"id":"old","command":"true"}"#, "not json"])
            #expect(try await reader.requeueDeadLetters(.all).isEmpty)
        }
    }

    @Test func theTextShowsHostileIdsWithoutTheirControlCharacters() {
        let status = FleetStatus(
            generatedAtMilliseconds: 10_000, queues: [],
            workers: [
                FleetStatus.Worker(
                    id: "w", registered: true, heartbeatAgeMilliseconds: 1_500, info: Self.info("h"), processingDepth: 1,
                    jobs: [FleetStatus.RunningJob(id: "evil\u{1b}]0;pwned\u{07}", claimedAtMilliseconds: 4_000)])
            ],
            deadLetters: [])
        let text = FleetStatusText.render(status)
        #expect(!text.contains("\u{1b}"))
        #expect(text.contains("running evil\\u{1b}]0;pwned\\u{7} for 6.0 s"))
        #expect(text.contains("alive, heartbeat 1.5 s ago"))
    }
}
