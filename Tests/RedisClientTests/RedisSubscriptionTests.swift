import Logging
import NIOCore
import RESP
import RedisClient
import Synchronization
import TestSupport
import Testing

/// A real redis-server, a real subscription, messages published by our ordinary client.
@Suite("Redis subscription", .serialized)
struct RedisSubscriptionTests {
    /// Collects a subscription's events in the background, for tests to wait on.
    final class Collector: Sendable {
        let subscription: RedisSubscription
        private final class Events: Sendable {
            let list = Mutex<[RedisSubscription.Event]>([])
        }
        private let events = Events()
        private let task: Task<Void, Never>

        init(_ subscription: RedisSubscription) {
            self.subscription = subscription
            let events = self.events
            task = Task {
                for await event in subscription { events.list.withLock { $0.append(event) } }
            }
        }

        var all: [RedisSubscription.Event] { events.list.withLock { $0 } }

        /// The payloads of the messages so far, as text, with their channel (and pattern).
        var messages: [String] {
            all.compactMap { event in
                guard case .message(let message) = event else { return nil }
                return (message.pattern.map { $0 + " " } ?? "") + message.channel + " " + String(buffer: message.payload)
            }
        }

        var subscriptions: Int { all.count { if case .subscribed = $0 { true } else { false } } }

        func stop() async {
            subscription.close()
            await task.value
        }
    }

    private func subscribe(
        _ url: String, channels: [String], patterns: [String] = [], resp3: Bool, pingInterval: Duration = .seconds(10)
    ) throws -> Collector {
        var configuration = try RedisClientConfiguration(url: url)
        configuration.preferRESP3 = resp3
        configuration.reconnect.maxBackoff = .milliseconds(200)
        var logger = Logger(label: "subscription-test")
        logger.logLevel = .warning
        return Collector(
            RedisSubscription(
                configuration: configuration, channels: channels, patterns: patterns, pingInterval: pingInterval, logger: logger))
    }

    @Test("messages arrive in order on channels and patterns, over RESP2 and RESP3", arguments: [false, true])
    func messagesArrive(resp3: Bool) async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let collector = try subscribe(server.url, channels: ["a", "b"], patterns: ["p:*"], resp3: resp3)
                #expect(await eventually(timeout: .seconds(10)) { collector.subscriptions == 1 })
                #expect(collector.all.first == .subscribed(connection: 1))
                for (channel, text) in [("a", "1"), ("b", "2"), ("p:x", "3"), ("other", "lost"), ("a", "4")] {
                    _ = try await redis.send("PUBLISH", channel, text)
                }
                #expect(await eventually(timeout: .seconds(10)) { collector.messages.count == 4 })
                #expect(collector.messages == ["a 1", "b 2", "p:* p:x 3", "a 4"])
                // The connection is a subscriber's: Redis counts it on the channel.
                #expect(try await redis.send(RedisCommand("PUBLISH", "a", "5"), as: Int.self) == 1)
                await collector.stop()
                #expect(await eventually(timeout: .seconds(10)) {
                    (try? await redis.send(RedisCommand("PUBSUB", "NUMSUB", "a"), as: [RESPToken].self).last?.int) == 0
                })
            }
        }
    }

    @Test("after a redis-server restart the subscription resumes and says so", arguments: [false, true])
    func resumesAfterRestart(resp3: Bool) async throws {
        try await withRedisServer { server in
            let collector = try subscribe(server.url, channels: ["jobs:cancel"], resp3: resp3)
            #expect(await eventually(timeout: .seconds(10)) { collector.subscriptions == 1 })
            try await withClient(server.url) { redis in
                _ = try await redis.send("PUBLISH", "jobs:cancel", "before")
                #expect(await eventually(timeout: .seconds(10)) { collector.messages == ["jobs:cancel before"] })
            }
            await server.kill()
            try await server.restart()
            #expect(await eventually(timeout: .seconds(20)) { collector.subscriptions == 2 })
            #expect(collector.all.last == .subscribed(connection: 2))
            try await withClient(server.url) { redis in
                _ = try await redis.send("PUBLISH", "jobs:cancel", "after")
                #expect(await eventually(timeout: .seconds(10)) { collector.messages == ["jobs:cancel before", "jobs:cancel after"] })
            }
            await collector.stop()
        }
    }

    @Test("a subscriber connection closed by the server is replaced (CLIENT KILL TYPE pubsub)")
    func replacedAfterKill() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let collector = try subscribe(server.url, channels: ["c"], resp3: false, pingInterval: .milliseconds(200))
                #expect(await eventually(timeout: .seconds(10)) { collector.subscriptions == 1 })
                _ = try await redis.send("CLIENT", "KILL", "TYPE", "pubsub")
                #expect(await eventually(timeout: .seconds(10)) { collector.subscriptions == 2 })
                _ = try await redis.send("PUBLISH", "c", "x")
                #expect(await eventually(timeout: .seconds(10)) { collector.messages == ["c x"] })
                // PINGs are answered while subscribed: a quiet but live connection is not replaced.
                try await Task.sleep(for: .seconds(1))
                #expect(collector.subscriptions == 2)
                await collector.stop()
            }
        }
    }
}
