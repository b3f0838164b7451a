import Foundation
import RESP
import TestSupport
import Testing

@testable import JobQueue

@Suite("Priorities: several intake lists, taken in order")
struct PriorityQueueTests {
    private func job(_ id: String) -> String { #"{"id":"\#(id)","command":"true"}"# }

    private func prioritized(_ redis: QueueTestRedis, _ worker: String, heartbeat: Duration = .seconds(10)) -> JobQueue {
        redis.queue(worker) {
            $0.intakeLists = ["jobs:high", "jobs"]
            $0.heartbeatTTL = heartbeat
        }
    }

    @Test("a job on a higher list is claimed first, whatever was pushed before it; each list keeps its order")
    func higherListFirst() async throws {
        try await withQueueRedis { redis in
            let queue = prioritized(redis, "w")
            try await redis.push(job("low1"), job("low2"), to: "jobs")
            try await redis.push(job("high1"), job("high2"), to: "jobs:high")
            var order: [String] = []
            while let claimed = try await queue.claim(timeout: .milliseconds(300)) {
                order.append(claimed.id ?? "-")
                // In the processing list, as with one list: the move is atomic.
                #expect(try await redis.list("jobs:processing:w") == [String(decoding: claimed.payload, as: UTF8.self)])
                try await queue.finish(claimed, outcome: .failed(reason: "x", result: nil))
            }
            #expect(order == ["high1", "high2", "low1", "low2"])
        }
    }

    @Test("an idle worker wakes for a job on the first list, and finds one on a later list")
    func idleWorkerWakes() async throws {
        try await withQueueRedis { redis in
            let queue = prioritized(redis, "w")
            let waiting = Task { try await queue.claim(timeout: .seconds(20)) }
            try await Task.sleep(for: .milliseconds(300))
            try await redis.push(job("late-low"), to: "jobs")
            #expect(try await waiting.value?.id == "late-low")
            let again = Task { try await queue.claim(timeout: .seconds(20)) }
            try await Task.sleep(for: .milliseconds(300))
            try await redis.push(job("late-high"), to: "jobs:high")
            #expect(try await again.value?.id == "late-high")
        }
    }

    @Test("with every intake empty the worker waits without spinning")
    func waitsWithoutSpinning() async throws {
        try await withQueueRedis { redis in
            let queue = prioritized(redis, "w")
            try await redis.send("CONFIG", "RESETSTAT")
            #expect(try await queue.claim(timeout: .seconds(2)) == nil)
            let stats = try await redis.send("INFO", "commandstats").string()
            func calls(_ command: String) -> Int {
                guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
                    let field = line.split(separator: ",").first, let number = Int(field.split(separator: "=").last ?? "")
                else { return 0 }
                return number
            }
            // A poll every 250 ms: about 8 BLMOVEs and 8 scripts in 2 s. A spinning loop would make thousands.
            let blmoves = calls("blmove")
            #expect(blmoves >= 2 && blmoves <= 20, "BLMOVE ran \(blmoves) times")
            #expect(calls("evalsha") <= 60, "EVALSHA ran \(calls("evalsha")) times")
        }
    }

    @Test("jobs given back (drain, dead worker) go to the head of the first list")
    func givenBackToTheFirstList() async throws {
        try await withQueueRedis { redis in
            let worker = prioritized(redis, "w")
            try await redis.push(job("low"), to: "jobs")
            let drained = try #require(try await worker.claim(timeout: .seconds(2)))
            #expect(try await worker.requeue(drained))
            #expect(try await redis.list("jobs:high") == [job("low")])
            #expect(try await redis.list("jobs").isEmpty)

            let dying = prioritized(redis, "dying", heartbeat: .seconds(2))
            try await redis.push(job("queued-high"), to: "jobs:high")
            let held = try #require(try await dying.claim(timeout: .seconds(2)))
            #expect(held.id == "low")
            try await redis.waitForDeath(of: dying)
            let report = try await redis.queue("reaper") { $0.intakeLists = ["jobs:high", "jobs"] }.reapDeadWorkers()
            #expect(report.requeued == 1)
            #expect(try await redis.list("jobs:high") == [job("low"), job("queued-high")])
        }
    }

    @Test("the default configuration is today's single list, claimed with one BLMOVE and no script")
    func defaultIsOneList() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w")
            #expect(queue.configuration.intakeLists == ["jobs"])
            try await redis.push(job("a"), to: "jobs")
            try await redis.send("CONFIG", "RESETSTAT")
            #expect(try await queue.claim(timeout: .seconds(2))?.id == "a")
            let stats = try await redis.send("INFO", "commandstats").string()
            #expect(stats.contains("cmdstat_blmove:calls=1,"))
            #expect(!stats.contains("cmdstat_lmove"))
        }
    }

    @Test("an id naming one of the intake lists is refused, for every intake list")
    func reservedIDs() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w") { $0.intakeLists = ["urgent", "jobs"] }
            try await redis.push(#"{"id":"urgent","command":"true"}"#, to: "jobs")
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            guard case .failure(let invalid) = claimed.job else {
                Issue.record("an id naming an intake list was accepted")
                return
            }
            #expect(invalid.id == nil)
        }
    }
}
