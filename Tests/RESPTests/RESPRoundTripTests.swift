import NIOCore
import RESP
import Testing

@Suite struct RESPRoundTripTests {
    @Test func simpleStringRoundTrips() throws {
        var buffer = RESPValue.simpleString("OK").encoded
        let token = try #require(try RESPToken(consuming: &buffer))
        #expect(RESPValue(token) == .simpleString("OK"))
    }
}
