import Foundation
import RESP
import Synchronization
import TestSupport
import Testing

@testable import JobQueue

@Suite("Cancelling jobs: marks, channel and the one terminal status")
struct CancelQueueTests {
    @Test("requestCancel sets a mark with a TTL and publishes the id; what a platform sees with redis-cli")
    func requestSetsMarkAndPublishes() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w")
            try await withSubscriber(redis, channels: ["jobs:cancel"]) { (subscriber: CLISubscriber) async throws -> Void in
                #expect(try await queue.requestCancel(id: "666", ttl: .seconds(600)) == 1)
                #expect(try await subscriber.waitForMessages(1) == ["666"])
            }
            #expect(try await redis.send("GET", "jobs:cancel:666").string() == "1")
            let ttl = try await redis.send("TTL", "jobs:cancel:666").integer()
            #expect(ttl > 590 && ttl <= 600)
            #expect(try await queue.cancelRequested(among: ["666", "667"]) == ["666"])
            #expect(try await queue.cancelRequested(among: []) == [])
        }
    }

    @Test("the terminal status of a cancelled job is failed + cancelled with verdict cancelled, once; the mark goes")
    func cancelledOutcomeIsTheOneTerminalStatus() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w")
            try await redis.push(#"{"id":"c1","command":"sleep 100"}"#)
            let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
            _ = try await queue.requestCancel(id: "c1")
            try await withSubscriber(redis, channels: ["codebench:events:c1"]) { (subscriber: CLISubscriber) async throws -> Void in
                // The race with the job finishing at the same moment: whichever comes second publishes nothing.
                #expect(try await queue.finish(claimed, outcome: .cancelled()))
                #expect(try await queue.finish(claimed, outcome: .done(stdout: [], stderr: [], result: JobResultRecord())) == false)
                let event = try decodeObject(try #require(try await subscriber.waitForMessages(1).first))
                #expect(event["status"] == .string("failed"))
                #expect(event["reason"] == .string("cancelled"))
                #expect(event["verdict"] == .string("cancelled"))
            }
            let list = try await redis.list("c1")
            #expect(Array(list.prefix(2)) == ["failed", "cancelled"])
            #expect(list.count == 3)
            let record = try decodeObject(list[2])
            #expect(record["verdict"] == .string("cancelled"))
            #expect(record["status"] == .string("failed"))
            #expect(try await redis.send("EXISTS", "jobs:cancel:c1") == .integer(0))
            #expect(try await redis.list("jobs:processing:w").isEmpty)
        }
    }

    @Test("notifications: resubscribed when listening starts and after a redis restart, then the ids published")
    func notifications() async throws {
        try await withQueueRedis(RedisServerOptions(appendOnly: true)) { redis in
            let queue = redis.queue("w")
            let seen = NotificationLog()
            let listening = Task {
                for await notification in queue.cancelNotifications() { seen.append(notification) }
            }
            defer { listening.cancel() }
            #expect(await eventually(timeout: .seconds(10)) { seen.all == [.resubscribed] })
            _ = try await queue.requestCancel(id: "a")
            #expect(await eventually(timeout: .seconds(10)) { seen.all == [.resubscribed, .cancel(id: "a")] })
            await redis.server.kill()
            try await redis.server.restart()
            #expect(await eventually(timeout: .seconds(20)) { seen.all.count == 3 })
            #expect(seen.all.last == .resubscribed)
            // Requests sent while it was away are durable marks: still readable after the restart.
            #expect(try await queue.cancelRequested(among: ["a"]) == ["a"])
            // A platform that forgot the TTL: the worker hearing the id gives the mark the status TTL.
            try await redis.send("SET", "jobs:cancel:b", "1")
            try await redis.send("PUBLISH", "jobs:cancel", "b")
            #expect(await eventually(timeout: .seconds(10)) { seen.all.last == .cancel(id: "b") })
            #expect(await eventually(timeout: .seconds(10)) { (try? await redis.send("TTL", "jobs:cancel:b").integer()) ?? -1 > 0 })
            // A TTL the platform gave is kept.
            #expect(try await redis.send("TTL", "jobs:cancel:a").integer() > 86_000)
        }
    }
}

final class NotificationLog: Sendable {
    private let list = Mutex<[CancelNotification]>([])
    func append(_ notification: CancelNotification) { list.withLock { $0.append(notification) } }
    var all: [CancelNotification] { list.withLock { $0 } }
}
