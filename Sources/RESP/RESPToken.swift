import NIOCore

/// One complete, already validated RESP2/RESP3 value, kept as the slice of bytes it arrived in.
///
/// Holding the bytes rather than a decoded tree makes decoding allocation-free; ``value`` and the
/// accessors in `RESPToken+Accessors.swift` look inside on demand. Only the decoder (or
/// ``init(consuming:limits:)``) creates tokens, so every token is well-formed.
public struct RESPToken: Hashable, Sendable, CustomStringConvertible {
    /// The exact bytes of the value (for an attribute: the attribute and the value it decorates).
    public let base: ByteBuffer

    /// Wraps bytes the caller has already validated to hold exactly one value.
    @usableFromInline
    init(validated base: ByteBuffer) {
        self.base = base
    }

    /// Parses one value from the front of `buffer`, consuming it.
    /// Returns nil (consuming nothing) when the buffer holds only part of a value.
    public init?(consuming buffer: inout ByteBuffer, limits: RESPDecodingLimits = .default) throws(RESPParsingError) {
        guard let length = try Self.length(of: buffer, limits: limits) else { return nil }
        self.init(validated: buffer.readSlice(length: length)!)
    }

    /// The byte length of the first value in `buffer`'s readable bytes, nil when incomplete.
    public static func length(of buffer: ByteBuffer, limits: RESPDecodingLimits = .default) throws(RESPParsingError) -> Int? {
        var progress = RESPScanner.Progress()
        return try length(of: buffer, limits: limits, progress: &progress)
    }

    /// As above, resuming from (and updating) `progress` saved by an earlier call on the same bytes.
    static func length(of buffer: ByteBuffer, limits: RESPDecodingLimits, progress: inout RESPScanner.Progress) throws(RESPParsingError) -> Int? {
        let result: Result<Int?, RESPParsingError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(RESPParsingError) {
                return .success(try RESPScanner(bytes: bytes, limits: limits).scan(&progress))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The RESP type of the value.
    public var identifier: RESPTypeIdentifier {
        RESPTypeIdentifier(rawValue: base.getInteger(at: base.readerIndex, as: UInt8.self)!)!
    }

    /// The decoded outer layer of the value; nested values stay tokens.
    public var value: Value {
        var reader = base
        return Self.readValue(from: &reader)
    }

    public var description: String { RESPValue(self).description }

    /// The outer layer of a RESP value. All three null forms (`$-1`, `*-1`, `_`) are ``null``.
    public enum Value: Hashable, Sendable {
        case simpleString(ByteBuffer)
        case simpleError(ByteBuffer)
        case bulkString(ByteBuffer)
        case bulkError(ByteBuffer)
        /// The payload including its three-byte format and `:` (e.g. `txt:hello`).
        case verbatimString(ByteBuffer)
        case number(Int64)
        case double(Double)
        case boolean(Bool)
        case null
        /// Decimal digits with an optional sign.
        case bigNumber(ByteBuffer)
        case array(Array)
        case map(Map)
        case set(Array)
        case push(Array)
        /// Out-of-band attributes and the value they decorate.
        case attribute(Map, RESPToken)
    }

    /// The elements of an array, set or push, decoded lazily.
    public struct Array: Sequence, Hashable, Sendable {
        public let count: Int
        /// The bytes of the elements, back to back.
        let elements: ByteBuffer

        public func makeIterator() -> Iterator { Iterator(buffer: elements) }

        public struct Iterator: IteratorProtocol {
            var buffer: ByteBuffer
            public mutating func next() -> RESPToken? { RESPToken.readElement(from: &buffer) }
        }
    }

    /// The key/value pairs of a map or attribute, decoded lazily.
    public struct Map: Sequence, Hashable, Sendable {
        /// Number of pairs.
        public let count: Int
        let elements: ByteBuffer

        public func makeIterator() -> Iterator { Iterator(buffer: elements) }

        public struct Iterator: IteratorProtocol {
            var buffer: ByteBuffer
            public mutating func next() -> (key: RESPToken, value: RESPToken)? {
                guard let key = RESPToken.readElement(from: &buffer), let value = RESPToken.readElement(from: &buffer) else { return nil }
                return (key, value)
            }
        }
    }

    // MARK: - Reading validated bytes

    static func readElement(from buffer: inout ByteBuffer) -> RESPToken? {
        guard buffer.readableBytes > 0, let length = try? length(of: buffer, limits: .unlimited) else { return nil }
        return RESPToken(validated: buffer.readSlice(length: length)!)
    }

    /// Decodes the outer layer of `reader`, which holds exactly one validated value.
    private static func readValue(from reader: inout ByteBuffer) -> Value {
        let type = RESPTypeIdentifier(rawValue: reader.readInteger(as: UInt8.self)!)!
        switch type {
        case .simpleString: return .simpleString(readLine(&reader))
        case .simpleError: return .simpleError(readLine(&reader))
        case .integer: return .number(parseInteger(readLine(&reader)))
        case .null: return .null
        case .boolean:
            let line = readLine(&reader)
            return .boolean(line.getInteger(at: line.readerIndex, as: UInt8.self) == UInt8(ascii: "t"))
        case .double:
            let line = readLine(&reader)
            return .double(line.withUnsafeReadableBytes { RESPScanner.parseDouble($0, 0, $0.count) } ?? .nan)
        case .bigNumber: return .bigNumber(readLine(&reader))
        case .bulkString, .bulkError, .verbatimString:
            let length = Int(parseInteger(readLine(&reader)))
            if length < 0 { return .null }
            let payload = reader.readSlice(length: length)!
            switch type {
            case .bulkString: return .bulkString(payload)
            case .bulkError: return .bulkError(payload)
            default: return .verbatimString(payload)
            }
        case .array, .set, .push:
            let count = Int(parseInteger(readLine(&reader)))
            if count < 0 { return .null }
            let array = Array(count: count, elements: reader)
            switch type {
            case .array: return .array(array)
            case .set: return .set(array)
            default: return .push(array)
            }
        case .map:
            let count = Int(parseInteger(readLine(&reader)))
            return .map(Map(count: count, elements: reader))
        case .attribute:
            let count = Int(parseInteger(readLine(&reader)))
            var rest = reader
            for _ in 0..<(count * 2) { _ = readElement(from: &rest) }
            let attributesLength = rest.readerIndex - reader.readerIndex
            let attributes = Map(count: count, elements: reader.getSlice(at: reader.readerIndex, length: attributesLength)!)
            return .attribute(attributes, readElement(from: &rest)!)
        }
    }

    private static func readLine(_ reader: inout ByteBuffer) -> ByteBuffer {
        let length = reader.withUnsafeReadableBytes { bytes in
            bytes.firstIndex(of: UInt8(ascii: "\r"))!
        }
        let line = reader.readSlice(length: length)!
        reader.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func parseInteger(_ line: ByteBuffer) -> Int64 {
        line.withUnsafeReadableBytes { RESPScanner.parseInteger($0, 0, $0.count) } ?? 0
    }
}

extension RESPDecodingLimits {
    /// For re-reading bytes that were validated under the caller's limits already.
    static let unlimited = RESPDecodingLimits(maxDepth: .max, maxBulkLength: .max, maxAggregateCount: .max, maxLineLength: .max)
}
