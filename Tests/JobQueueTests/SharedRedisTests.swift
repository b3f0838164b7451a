import Foundation
import RESP
import Testing

@testable import JobQueue

@Suite("Several workers sharing one Redis")
struct SharedRedisTests {
    @Test func everyJobEndsWithExactlyOneTerminalStatus() async throws {
        try await withQueueRedis { redis in
            let ids = (1...40).map { "job-\($0)" }
            for id in ids { try await redis.push(#"{"id":"\#(id)","command":"true"}"#) }

            // A worker that claims five jobs and dies holding them.
            let crashy = redis.queue("crashy") { $0.heartbeatTTL = .milliseconds(500) }
            var abandoned: [String] = []
            for _ in 1...5 {
                let claimed = try #require(try await crashy.claim(timeout: .seconds(2)))
                try await crashy.publish(.received, for: claimed)
                abandoned.append(try #require(claimed.id))
            }

            let workers = ["w1", "w2", "w3"].map { name in redis.queue(name) { $0.reaperInterval = .milliseconds(100) } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers {
                    group.addTask {
                        let deadline = ContinuousClock.now + .seconds(20)
                        var idle = 0
                        while ContinuousClock.now < deadline {
                            _ = try await worker.reapDeadWorkers()
                            guard let claimed = try await worker.claim(timeout: .milliseconds(200)) else {
                                idle += 1
                                // Done once the crashed worker's jobs are back and drained too.
                                if idle > 3, try await redis.send("LLEN", "jobs:processing:crashy") == .integer(0) { return }
                                continue
                            }
                            idle = 0
                            try await worker.publish(.received, for: claimed)
                            try await worker.publish(.running, for: claimed)
                            try await worker.finish(
                                claimed, outcome: .done(stdout: Array("ok".utf8), stderr: [], result: JobResultRecord(verdict: "ok")))
                        }
                    }
                }
                try await group.waitForAll()
            }

            for id in ids {
                let list = try await redis.list(id)
                let terminal = list.filter { $0 == "done" || $0 == "failed" }
                #expect(terminal == ["done"], "\(id): \(list)")
                let record = try decodeObject(try #require(list.last))
                #expect(record["attempt"] == .int(abandoned.contains(id) ? 2 : 1), "\(id)")
            }
            #expect(try await redis.list("jobs").isEmpty)
            let processing = try await redis.send("KEYS", "jobs:processing:*").strings()
            #expect(processing.isEmpty)
            #expect(try await redis.send("HLEN", "jobs:deliveries") == .integer(0))
        }
    }
}
