import NIOCore
import RESP
import RedisClient
import Testing
import TestSupport

@Suite struct RedisClientCommandTests {
    @Test func commandsRepliesAndTypedDecoding() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                #expect(try await redis.send("SET", "greeting", "hello").string == "OK")
                #expect(try await redis.send(RedisCommand("GET", "greeting"), as: String.self) == "hello")
                #expect(try await redis.send(RedisCommand("GET", "missing"), as: String?.self) == nil)
                #expect(try await redis.send(RedisCommand("RPUSH", "list", "a", "b", "c"), as: Int.self) == 3)
                #expect(try await redis.send(RedisCommand("LRANGE", "list", 0, -1), as: [String].self) == ["a", "b", "c"])
                _ = try await redis.send("HSET", "h", "f1", "v1", "f2", "v2")
                #expect(try await redis.send(RedisCommand("HGETALL", "h"), as: [String: String].self) == ["f1": "v1", "f2": "v2"])
                let binary = ByteBuffer(bytes: [0, 13, 10, 255])
                _ = try await redis.send("SET", "bin", binary)
                #expect(try await redis.send(RedisCommand("GET", "bin"), as: ByteBuffer.self) == binary)
            }
        }
    }

    @Test func serverErrorsAreTypedAndNameTheCommand() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                _ = try await redis.send("SET", "text", "abc")
                let wrongType = await #expect(throws: RedisError.self) { try await redis.send("LPUSH", "text", "x") }
                #expect(wrongType?.code == .serverError)
                #expect(wrongType?.command == "LPUSH")
                #expect(wrongType?.serverErrorPrefix == "WRONGTYPE")
                let unknown = await #expect(throws: RedisError.self) { try await redis.send("NOSUCHCOMMAND") }
                #expect(unknown?.serverErrorPrefix == "ERR")
                // The connection is still fine afterwards.
                #expect(try await redis.send("PING").string == "PONG")
                let decoding = await #expect(throws: RedisError.self) { try await redis.send(RedisCommand("GET", "text"), as: Int.self) }
                #expect(decoding?.code == .decodingFailed)
            }
        }
    }

    @Test func tenThousandPipelinedCommandsReplyInOrder() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let commands = (0..<10_000).map { _ in RedisCommand("INCR", "counter") }
                let replies = try await redis.pipeline(commands)
                #expect(replies.count == 10_000)
                let values = try replies.map { try $0.get().decode(as: Int.self) }
                #expect(values == Array(1...10_000))

                // Mixed pipeline: an error reply in the middle does not shift the others.
                let mixed = try await redis.pipeline([
                    RedisCommand("SET", "a", "1"), RedisCommand("LPUSH", "a", "x"), RedisCommand("GET", "a"),
                ])
                #expect(try mixed[0].get().string == "OK")
                #expect(throws: RedisError.self) { try mixed[1].get() }
                #expect(try mixed[2].get().string == "1")
            }
        }
    }

    @Test func concurrentCallersOnTheSharedConnectionGetTheirOwnReplies() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<20 {
                        group.addTask {
                            for i in 0..<500 {
                                let key = "k:\(worker):\(i)"
                                _ = try await redis.send("SET", key, "\(worker * 1000 + i)")
                                let value = try await redis.send(RedisCommand("GET", key), as: Int.self)
                                #expect(value == worker * 1000 + i)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await redis.send(RedisCommand("DBSIZE"), as: Int.self) == 10_000)
            }
        }
    }

    @Test func transactionsRunAtomicallyAndReportAborts() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let results = try await redis.transaction([
                    RedisCommand("SET", "t", "1"), RedisCommand("INCR", "t"), RedisCommand("LPUSH", "t", "x"),
                ])
                #expect(try results[1].get().int == 2)
                #expect(throws: RedisError.self) { try results[2].get() }

                let aborted = await #expect(throws: RedisError.self) {
                    try await redis.transaction([RedisCommand("SET", "t", "9"), RedisCommand("GET")])
                }
                #expect(aborted?.code == .transactionAborted)
                #expect(try await redis.send(RedisCommand("GET", "t"), as: String.self) == "2")

                // WATCH needs a connection of its own.
                let outcome: Bool = try await redis.withDedicatedConnection { connection in
                    _ = try await connection.send("WATCH", "t")
                    _ = try await redis.send("SET", "t", "changed")  // from the shared connection
                    do {
                        _ = try await connection.transaction([RedisCommand("SET", "t", "mine")])
                        return true
                    } catch let error as RedisError where error.code == .transactionAborted {
                        return false
                    }
                }
                #expect(outcome == false)
                #expect(try await redis.send(RedisCommand("GET", "t"), as: String.self) == "changed")
            }
        }
    }

    @Test func evalScriptFallsBackToEvalOnNoscript() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
                let loaded = try await redis.send(RedisCommand("SCRIPT", "LOAD", script.source), as: String.self)
                #expect(loaded == script.sha1)
                _ = try await redis.send("SCRIPT", "FLUSH")
                #expect(try await redis.send(RedisCommand("SCRIPT", "EXISTS", script.sha1), as: [Int].self) == [0])

                let first = try await redis.evalScript(script, keys: ["n"], arguments: ["arg"])
                #expect(first.array?.map { RESPValue($0) } == [.bulkString("n"), .bulkString("arg"), .integer(1)])
                #expect(try await redis.send(RedisCommand("SCRIPT", "EXISTS", script.sha1), as: [Int].self) == [1])
                let second = try await redis.evalScript(script, keys: ["n"], arguments: ["arg"])
                #expect(second.array?.last?.int == 2)
            }
        }
    }

    @Test func sendsFromTheClientsEventLoopExecutor() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let (onLoop, values) = try await withTaskExecutorPreference(redis.executor) {
                    var values: [Int] = []
                    for _ in 0..<1000 { values.append(try await redis.send(RedisCommand("INCR", "n"), as: Int.self)) }
                    let replies = try await redis.pipeline((0..<100).map { _ in RedisCommand("INCR", "n") })
                    values += try replies.map { try $0.get().decode(as: Int.self) }
                    return (redis.eventLoop.inEventLoop, values)
                }
                #expect(onLoop, "the loop ran on the client's event loop")
                #expect(values == Array(1...1100))
            }
        }
    }

    @Test func scriptHashMatchesKnownSHA1() {
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    @Test func unsupportedCommandsAreRefused() async throws {
        try await withRedisServer { server in
            try await withClient(server.url) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("SUBSCRIBE", "channel") }
                #expect(error?.code == .unsupportedCommand)
                let receivers = try await redis.send(RedisCommand("PUBLISH", "channel", "hi"), as: Int.self)
                #expect(receivers == 0)
            }
        }
    }
}
