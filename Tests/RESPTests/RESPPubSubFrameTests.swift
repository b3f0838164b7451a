import NIOCore
import RESP
import Testing

@Suite struct RESPPubSubFrameTests {
    private func frame(_ wire: String) throws -> RESPPubSubFrame {
        var buffer = ByteBuffer(string: wire)
        let token = try #require(try RESPToken(consuming: &buffer))
        #expect(buffer.readableBytes == 0)
        return try token.decode(as: RESPPubSubFrame.self)
    }

    @Test("a message reads the same from a RESP2 array and a RESP3 push")
    func messageInBothProtocols() throws {
        let expected = RESPPubSubFrame.message(channel: "jobs:cancel", payload: ByteBuffer(string: "666"))
        #expect(try frame("*3\r\n$7\r\nmessage\r\n$11\r\njobs:cancel\r\n$3\r\n666\r\n") == expected)
        #expect(try frame(">3\r\n$7\r\nmessage\r\n$11\r\njobs:cancel\r\n$3\r\n666\r\n") == expected)
    }

    @Test("pattern messages, confirmations and pongs")
    func otherKinds() throws {
        #expect(
            try frame("*4\r\n$8\r\npmessage\r\n$6\r\njobs:*\r\n$6\r\njobs:a\r\n$1\r\nx\r\n")
                == .patternMessage(pattern: "jobs:*", channel: "jobs:a", payload: ByteBuffer(string: "x")))
        #expect(try frame("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n") == .subscribed(kind: "subscribe", channel: "a", count: 2))
        #expect(try frame(">3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:1\r\n") == .subscribed(kind: "psubscribe", channel: "a*", count: 1))
        #expect(try frame("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n") == .unsubscribed(kind: "unsubscribe", channel: nil, count: 0))
        #expect(try frame("*2\r\n$4\r\npong\r\n$0\r\n\r\n") == .pong(ByteBuffer()))
        #expect(try frame("+PONG\r\n") == .pong(ByteBuffer()))
    }

    @Test("binary payloads are kept byte for byte")
    func binaryPayload() throws {
        let bytes: [UInt8] = [0, 0xFF, 13, 10, 0x80]
        var wire = ByteBuffer(string: "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\n")
        wire.writeBytes(bytes)
        wire.writeString("\r\n")
        let token = try #require(try RESPToken(consuming: &wire))
        guard case .message(_, let payload) = try token.decode(as: RESPPubSubFrame.self) else {
            Issue.record("not a message")
            return
        }
        #expect(Array(payload.readableBytesView) == bytes)
    }

    @Test(
        "anything else is a decode error, not a crash",
        arguments: [
            ":1\r\n", "$3\r\nabc\r\n", "*0\r\n", "*2\r\n$7\r\nmessage\r\n$1\r\nc\r\n", "*3\r\n$7\r\nunknown\r\n$1\r\nc\r\n$1\r\nx\r\n",
            "*3\r\n:1\r\n$1\r\nc\r\n$1\r\nx\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n$1\r\nx\r\n", "%1\r\n+a\r\n+b\r\n",
            "-ERR no\r\n",
        ])
    func refusesOtherFrames(wire: String) throws {
        #expect(throws: RESPDecodeError.self) { _ = try frame(wire) }
    }
}
