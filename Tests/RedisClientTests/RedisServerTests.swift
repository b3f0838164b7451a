import RedisClient
import Testing
import TestSupport

@Suite struct RedisServerTests {
    @Test func startsAndStops() async throws {
        try await withRedisServer { server in
            #expect(server.pid != nil)
        }
    }
}
