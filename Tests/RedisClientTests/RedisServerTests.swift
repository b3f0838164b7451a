import Foundation
import RESP
import RedisClient
import Testing
import TestSupport

@Suite struct RedisServerTests {
    @Test func startsAnswersAndStops() async throws {
        let directory = try await withRedisServer { server in
            #expect(server.pid != nil)
            try await withClient(server.url) { redis in
                let pong = try await redis.send("PING")
                #expect(pong.string == "PONG")
                _ = try await redis.send("SET", "k", "v")
                #expect(try await redis.send(RedisCommand("GET", "k"), as: String?.self) == "v")
            }
            await server.stop()
            #expect(server.pid == nil)
            return server.directory
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
