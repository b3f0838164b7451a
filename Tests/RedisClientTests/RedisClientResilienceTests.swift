import NIOCore
import RESP
import RedisClient
import Testing
import TestSupport

@Suite struct RedisClientResilienceTests {
    @Test func blpopWithTimeoutReturnsNil() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let reply = try await redis.send("BLPOP", "empty", 0.2)
                #expect(reply.isNull)
                _ = try await redis.send("RPUSH", "full", "job")
                let popped = try await redis.send(RedisCommand("BLPOP", "full", 1), as: [String].self)
                #expect(popped == ["full", "job"])
            }
        }
    }

    @Test func blockingCommandsDoNotBlockTheSharedConnection() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                async let blocked = redis.send("BLPOP", "later", 5)
                try await waitForBlockedClients(redis, count: 1)
                // The shared connection keeps serving while BLPOP waits on its own connection.
                for _ in 0..<100 { #expect(try await redis.send("PING").string == "PONG") }
                _ = try await redis.send("RPUSH", "later", "x")
                #expect(try await blocked.array?.last?.string == "x")
            }
        }
    }

    @Test func cancellingABlockedBLPOPDoesNotSwallowTheNextElement() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                for round in 0..<20 {
                    let waiter = Task { try await redis.send("BLPOP", "queue", 0) }
                    try await waitForBlockedClients(redis, count: 1)
                    waiter.cancel()
                    let result = await waiter.result
                    #expect(throws: RedisError.self) { try result.get() }
                    if case .failure(let error as RedisError) = result { #expect(error.code == .cancelled) }

                    // Push after the cancel; the element must still be in the list, read from another connection.
                    _ = try await redis.send("RPUSH", "queue", "element-\(round)")
                    let popped = try await withClient(server.url) { other in
                        try await other.send(RedisCommand("LPOP", "queue"), as: String?.self)
                    }
                    #expect(popped == "element-\(round)")
                }
                // And blocking commands keep working afterwards.
                _ = try await redis.send("RPUSH", "queue", "last")
                #expect(try await redis.send(RedisCommand("BLPOP", "queue", 1), as: [String].self) == ["queue", "last"])
            }
        }
    }

    /// Without permission for CLIENT UNBLOCK the client falls back to closing the blocked connection.
    @Test func cancellingWithoutClientUnblockPermissionClosesTheConnection() async throws {
        let options = RedisServerOptions(aclUsers: [.init(name: "limited", password: "pw", rules: ["~*", "&*", "+@all", "-client"])])
        try await withRedisServer(options) { server in
            try await withClient(server.url(user: "limited", password: "pw")) { redis in
                let waiter = Task { try await redis.send("BLPOP", "queue", 0) }
                try await waitForBlockedClients(redis, count: 1)
                waiter.cancel()
                let result = await waiter.result
                if case .failure(let error as RedisError) = result {
                    #expect(error.code == .cancelled)
                } else {
                    Issue.record("expected a cancellation error, got \(result)")
                }
                try await waitForBlockedClients(redis, count: 0)
            }
        }
    }

    @Test func commandTimeoutClosesTheConnectionAndTheClientRecovers() async throws {
        try await withRedisServer(RedisServerOptions(extraArguments: ["--enable-debug-command", "yes"])) { server in
            try await withClient(server.url) { redis in
                _ = try await redis.send("SET", "k", "v")
                let error = await #expect(throws: RedisError.self) {
                    try await redis.send(RedisCommand("DEBUG", "SLEEP", "0.5"), timeout: .milliseconds(100))
                }
                #expect(error?.code == .timeout)
                #expect(error?.command == "DEBUG")
                // The late reply to DEBUG SLEEP must never be taken for this GET's reply.
                #expect(try await redis.send(RedisCommand("GET", "k"), as: String.self) == "v")

                let blocking = await #expect(throws: RedisError.self) {
                    try await redis.send(RedisCommand("BLPOP", "nothing", 10), timeout: .milliseconds(100))
                }
                #expect(blocking?.code == .timeout)
                try await waitForBlockedClients(redis, count: 0)
            }
        }
    }

    @Test func reconnectsAfterServerIsKilledAndRestarted() async throws {
        try await withRedisServer(RedisServerOptions(appendOnly: true)) { server in
            try await withClient(server.url) { redis in
                _ = try await redis.send("SET", "durable", "yes")
                await server.kill()
                // Once the client has read the FIN of the old connection (waited for, not assumed),
                // the first command after the restart succeeds: the dead connection is replaced.
                #expect(await eventually(timeout: .seconds(10)) { !redis.hasActiveSharedConnection })
                try await server.restart()
                #expect(try await redis.send(RedisCommand("GET", "durable"), as: String.self) == "yes")

                // Server down while commands are issued: they wait through the backoff and succeed once it is back.
                await server.kill()
                // Let the client read the server's FIN first: a command written before that fails with
                // connectionClosed, because nobody can tell whether the server ran it
                // (that case is `inFlightCommandFailsWhenTheServerDies`).
                #expect(await eventually(timeout: .seconds(10)) { !redis.hasActiveSharedConnection })
                let pending = Task { try await redis.send(RedisCommand("INCR", "after-restart"), as: Int.self) }
                try await Task.sleep(for: .milliseconds(300))
                try await server.restart()
                #expect(try await pending.value == 1)

                // Dedicated connections recover too.
                await server.kill()
                try await server.restart()
                #expect(try await redis.send("BLPOP", "none", 0.1).isNull)
            }
        }
    }

    @Test func waitsWhileARestartedServerIsLoading() async throws {
        try await withRedisServer(RedisServerOptions(extraArguments: ["--enable-debug-command", "yes"])) { server in
            // Loading a million keys on a busy two-core host can outlast the default eight reconnect attempts.
            try await withClient(server.url, configure: { $0.reconnect.maxAttempts = 40 }) { redis in
                _ = try await redis.send(RedisCommand("DEBUG", "POPULATE", 1_000_000), timeout: .seconds(60))
                _ = try await redis.send(RedisCommand("SAVE"), timeout: .seconds(60))
                await server.kill()
                try await server.restart()  // returns once the server answers, even if only with -LOADING
                let keys = try await redis.send(RedisCommand("DBSIZE"), as: Int.self)
                #expect(keys == 1_000_000)
            }
        }
    }

    @Test func inFlightCommandFailsWhenTheServerDies() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let waiter = Task { try await redis.send("BLPOP", "never", 0) }
                try await waitForBlockedClients(redis, count: 1)
                await server.kill()
                let result = await waiter.result
                guard case .failure(let error as RedisError) = result else {
                    Issue.record("expected a connection error, got \(result)")
                    return
                }
                #expect(error.code == .connectionClosed)
                #expect(error.command == "BLPOP")
            }
        }
    }
}

/// Polls `INFO clients` until `blocked_clients` is `count` (the server has registered the BLPOP).
func waitForBlockedClients(_ redis: RedisClient, count: Int) async throws {
    // A deadline rather than a count of polls: on a loaded 2-core machine each poll can take long.
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        let info = try await redis.send(RedisCommand("INFO", "clients"), as: String.self)
        if info.split(whereSeparator: \.isNewline).contains("blocked_clients:\(count)") { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("blocked_clients never reached \(count)")
}
