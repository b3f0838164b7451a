import NIOCore
import NIOEmbedded
import RESP

/// One value of every RESP2/RESP3 type, plus nested and edge-case values.
enum RESPSamples {
    static let values: [RESPValue] = [
        .simpleString("OK"),
        .simpleString(""),
        .simpleError("ERR unknown command 'FOO'"),
        .integer(0),
        .integer(-1),
        .integer(.max),
        .integer(.min),
        .bulkString("hello"),
        .bulkString(""),
        .bulkString(ByteBuffer(bytes: [0, 13, 10, 255, 36, 42])), // binary, CRLF inside
        .nullBulkString,
        .nullArray,
        .null,
        .boolean(true),
        .boolean(false),
        .double(3.14),
        .double(-0.5),
        .double(1e300),
        .double(.infinity),
        .double(-.infinity),
        .bigNumber("3492890328409238509324850943850943825024385"),
        .bigNumber("-1"),
        .bulkError("SYNTAX invalid syntax"),
        .verbatimString(format: "txt", ByteBuffer(string: "Some string")),
        .verbatimString(format: "mkd", ByteBuffer(string: "")),
        .array([]),
        .array([.integer(1), .bulkString("two"), .nullBulkString, .array([.simpleString("nested"), .null])]),
        .map([]),
        .map([.init(.simpleString("first"), .integer(1)), .init(.bulkString("second"), .array([.boolean(true)]))]),
        .set([.bulkString("a"), .bulkString("b"), .integer(3)]),
        .attribute([.init(.simpleString("ttl"), .integer(3600))], .array([.integer(2039123), .integer(9543892)])),
        .push([.bulkString("message"), .bulkString("channel"), .bulkString("payload")]),
        .array([.map([.init(.bulkString("k"), .set([.double(1.5), .bigNumber("12")]))]), .push([.integer(1)])]),
    ]

    /// Feeds `chunks` to a channel running the decoder and returns what it produced.
    static func decodeThroughChannel(_ chunks: [ByteBuffer], limits: RESPDecodingLimits = .default) throws -> [RESPToken] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPTokenDecoder(limits: limits)))
        var tokens: [RESPToken] = []
        for chunk in chunks {
            try channel.writeInbound(chunk)
            while let token = try channel.readInbound(as: RESPToken.self) { tokens.append(token) }
        }
        _ = try channel.finish()
        return tokens
    }

    /// Splits a buffer into one-byte buffers.
    static func bytewise(_ buffer: ByteBuffer) -> [ByteBuffer] {
        buffer.readableBytesView.map { ByteBuffer(bytes: [$0]) }
    }
}
