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

    /// A server whose test process died (simulated by pointing owner.pid at a finished process)
    /// is killed and its dir removed when the next server starts.
    @Test func orphanedServersAreSweptOnTheNextStart() async throws {
        let orphan = try await RedisServer.start()
        let orphanPID = try #require(orphan.pid)
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        try String(finished.processIdentifier).write(toFile: orphan.directory + "/owner.pid", atomically: true, encoding: .utf8)

        try await withRedisServer { _ in
            #expect(!FileManager.default.fileExists(atPath: orphan.directory))
        }
        await orphan.stop()  // reaps the killed process
        #expect(orphan.pid == nil)
        #expect(kill(orphanPID, 0) != 0)
    }
}
