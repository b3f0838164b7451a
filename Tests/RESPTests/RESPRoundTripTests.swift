import NIOCore
import RESP
import Testing

@Suite struct RESPRoundTripTests {
    @Test(arguments: RESPSamples.values)
    func everyTypeRoundTrips(value: RESPValue) throws {
        let encoded = value.encoded
        let tokens = try RESPSamples.decodeThroughChannel([encoded])
        #expect(tokens.count == 1)
        let token = try #require(tokens.first)
        #expect(token.base == encoded, "token keeps exactly the bytes of the value")
        #expect(RESPValue(token) == value)
    }

    @Test(arguments: RESPSamples.values)
    func oneByteAtATimeDecodesTheSame(value: RESPValue) throws {
        let encoded = value.encoded
        let whole = try RESPSamples.decodeThroughChannel([encoded])
        let bytewise = try RESPSamples.decodeThroughChannel(RESPSamples.bytewise(encoded))
        #expect(bytewise == whole)
        #expect(bytewise.map { RESPValue($0) } == [value])
    }

    @Test func allSamplesBackToBackOneByteAtATime() throws {
        var stream = ByteBuffer()
        for value in RESPSamples.values { value.encode(into: &stream) }
        let tokens = try RESPSamples.decodeThroughChannel(RESPSamples.bytewise(stream))
        #expect(tokens.map { RESPValue($0) } == RESPSamples.values)
    }

    /// A large reply arriving in small reads decodes once, correctly (the decoder resumes where it stopped).
    @Test func largeReplyInSmallChunks() throws {
        let elements = (0..<30_000).map { RESPValue.array([.bulkString("item-\($0)"), .integer(Int64($0))]) }
        var encoded = RESPValue.array(elements).encoded
        var chunks: [ByteBuffer] = []
        while encoded.readableBytes > 0 {
            chunks.append(encoded.readSlice(length: min(1024, encoded.readableBytes))!)
        }
        let tokens = try RESPSamples.decodeThroughChannel(chunks)
        #expect(tokens.count == 1)
        let array = try #require(tokens.first?.array)
        #expect(array.count == 30_000)
        #expect(array.last.map { RESPValue($0) } == elements.last)
    }

    @Test func nanRoundTrips() throws {
        let expected: [String: Double] = ["nan": .nan, "-nan": .nan, "inf": .infinity, "-inf": -.infinity, "+inf": .infinity, "1.5e-3": 0.0015, "10": 10, "-0.0": -0.0]
        for (text, value) in expected {
            var buffer = ByteBuffer(string: ",\(text)\r\n")
            let token = try #require(try RESPToken(consuming: &buffer))
            guard case .double(let d) = token.value else {
                Issue.record("not a double: \(text)")
                continue
            }
            #expect(value.isNaN ? d.isNaN : d == value, "\(text)")
        }
    }

    @Test func incompleteInputConsumesNothing() throws {
        let encoded = RESPSamples.values.last!.encoded
        for length in 0..<encoded.readableBytes {
            var partial = encoded.getSlice(at: encoded.readerIndex, length: length)!
            #expect(try RESPToken(consuming: &partial) == nil)
            #expect(partial.readableBytes == length)
        }
    }

    @Test func commandEncoding() {
        var buffer = ByteBuffer()
        buffer.writeRESPCommand(["SET", "key", 42, -7, 0, Int.min, ByteBuffer(string: "v"), [UInt8]([1, 2]), 1.5])
        let expected = "*9\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\n42\r\n$2\r\n-7\r\n$1\r\n0\r\n$20\r\n-9223372036854775808\r\n$1\r\nv\r\n$2\r\n\u{1}\u{2}\r\n$3\r\n1.5\r\n"
        #expect(String(buffer: buffer) == expected)
    }

    @Test func accessorsAndDecoding() throws {
        func token(_ value: RESPValue) throws -> RESPToken {
            var buffer = value.encoded
            return try #require(try RESPToken(consuming: &buffer))
        }
        #expect(try token(.bulkString("abc")).decode(as: String.self) == "abc")
        #expect(try token(.nullBulkString).decode(as: String?.self) == nil)
        #expect(try token(.null).isNull)
        #expect(try token(.integer(12)).decode(as: Int.self) == 12)
        #expect(try token(.bulkString("12")).decode(as: Int.self) == 12)
        #expect(try token(.boolean(true)).decode(as: Bool.self))
        #expect(try token(.array([.bulkString("a"), .nullBulkString])).decode(as: [String?].self) == ["a", nil])
        #expect(try token(.map([.init(.bulkString("a"), .integer(1))])).decode(as: [String: Int].self) == ["a": 1])
        #expect(try token(.array([.bulkString("a"), .integer(1)])).decode(as: [String: Int].self) == ["a": 1])
        #expect(try token(.verbatimString(format: "txt", ByteBuffer(string: "hi"))).string == "hi")
        #expect(try token(.simpleError("ERR x")).errorMessage == "ERR x")
        #expect(try token(.bulkError("ERR y")).isError)
        #expect(throws: RESPDecodeError.self) { try token(.nullBulkString).decode(as: String.self) }
        #expect(throws: RESPDecodeError.self) { try token(.array([])).decode(as: Int.self) }
    }

    /// `isNull` looks at the length's sign before parsing; it must agree with the parsed value for every type.
    @Test(arguments: [
        ("_\r\n", true), ("$-1\r\n", true), ("*-1\r\n", true),
        ("$0\r\n\r\n", false), ("$3\r\n-ab\r\n", false), ("*0\r\n", false), ("!3\r\nERR\r\n", false), ("~0\r\n", false),
        (":-1\r\n", false), ("-ERR x\r\n", false), ("+OK\r\n", false), (",-1.5\r\n", false), ("(-12\r\n", false),
    ])
    func isNullMatchesTheParsedValue(wire: String, expected: Bool) throws {
        var buffer = ByteBuffer(string: wire)
        let token = try #require(try RESPToken(consuming: &buffer))
        #expect(token.isNull == expected)
        let parsedNull = if case .null = token.value { true } else { false }
        #expect(token.isNull == parsedNull)
    }
}
