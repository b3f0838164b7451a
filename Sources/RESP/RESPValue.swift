import NIOCore

/// A fully decoded RESP value that owns its data: for building replies (test servers, fuzzing),
/// for printing, and for callers that prefer a tree over lazy ``RESPToken`` access.
/// Unlike ``RESPToken/Value`` it keeps the three null forms apart, so it round-trips byte for byte.
public indirect enum RESPValue: Hashable, Sendable, CustomStringConvertible {
    case simpleString(String)
    case simpleError(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    /// RESP2 `$-1`.
    case nullBulkString
    /// RESP2 `*-1`.
    case nullArray
    /// RESP3 `_`.
    case null
    case boolean(Bool)
    case double(Double)
    /// Decimal digits with an optional sign.
    case bigNumber(String)
    case bulkError(ByteBuffer)
    /// `format` is exactly three bytes, e.g. `txt` or `mkd`.
    case verbatimString(format: String, ByteBuffer)
    case array([RESPValue])
    case map([Pair])
    case set([RESPValue])
    case attribute([Pair], RESPValue)
    case push([RESPValue])

    /// A key/value pair of a map or attribute.
    public struct Pair: Hashable, Sendable {
        public var key: RESPValue
        public var value: RESPValue
        public init(_ key: RESPValue, _ value: RESPValue) {
            self.key = key
            self.value = value
        }
    }

    /// A bulk string from UTF-8 text.
    public static func bulkString(_ string: String) -> RESPValue { .bulkString(ByteBuffer(string: string)) }

    /// A bulk error from UTF-8 text.
    public static func bulkError(_ string: String) -> RESPValue { .bulkError(ByteBuffer(string: string)) }

    /// Decodes a token completely.
    public init(_ token: RESPToken) {
        switch token.value {
        case .simpleString(let b): self = .simpleString(String(buffer: b))
        case .simpleError(let b): self = .simpleError(String(buffer: b))
        case .bulkString(let b): self = .bulkString(b)
        case .bulkError(let b): self = .bulkError(b)
        case .verbatimString(var b):
            let format = b.readString(length: 3)!
            b.moveReaderIndex(forwardBy: 1)
            self = .verbatimString(format: format, b)
        case .number(let n): self = .integer(n)
        case .double(let d): self = .double(d)
        case .boolean(let b): self = .boolean(b)
        case .null:
            switch token.identifier {
            case .bulkString: self = .nullBulkString
            case .array: self = .nullArray
            default: self = .null
            }
        case .bigNumber(let b): self = .bigNumber(String(buffer: b))
        case .array(let a): self = .array(a.map { RESPValue($0) })
        case .set(let a): self = .set(a.map { RESPValue($0) })
        case .push(let a): self = .push(a.map { RESPValue($0) })
        case .map(let m): self = .map(m.map { Pair(RESPValue($0.key), RESPValue($0.value)) })
        case .attribute(let m, let v): self = .attribute(m.map { Pair(RESPValue($0.key), RESPValue($0.value)) }, RESPValue(v))
        }
    }

    /// Appends the wire form.
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .simpleString(let s): Self.line(&buffer, "+", s)
        case .simpleError(let s): Self.line(&buffer, "-", s)
        case .integer(let n): Self.line(&buffer, ":", String(n))
        case .bulkString(let b): Self.bulk(&buffer, "$", b)
        case .nullBulkString: buffer.writeStaticString("$-1\r\n")
        case .nullArray: buffer.writeStaticString("*-1\r\n")
        case .null: buffer.writeStaticString("_\r\n")
        case .boolean(let b): buffer.writeStaticString(b ? "#t\r\n" : "#f\r\n")
        case .double(let d):
            let text = d.isNaN ? "nan" : d == .infinity ? "inf" : d == -.infinity ? "-inf" : String(d)
            Self.line(&buffer, ",", text)
        case .bigNumber(let s): Self.line(&buffer, "(", s)
        case .bulkError(let b): Self.bulk(&buffer, "!", b)
        case .verbatimString(let format, let b):
            var payload = ByteBuffer(string: format + ":")
            payload.writeImmutableBuffer(b)
            Self.bulk(&buffer, "=", payload)
        case .array(let a): Self.aggregate(&buffer, "*", a)
        case .set(let a): Self.aggregate(&buffer, "~", a)
        case .push(let a): Self.aggregate(&buffer, ">", a)
        case .map(let pairs): Self.pairs(&buffer, "%", pairs)
        case .attribute(let pairs, let value):
            Self.pairs(&buffer, "|", pairs)
            value.encode(into: &buffer)
        }
    }

    /// The wire form in a new buffer.
    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    public var description: String {
        switch self {
        case .simpleString(let s): return s
        case .simpleError(let s): return "(error) " + s
        case .integer(let n): return "(integer) \(n)"
        case .bulkString(let b): return "\"" + String(buffer: b) + "\""
        case .nullBulkString, .nullArray, .null: return "(nil)"
        case .boolean(let b): return "(boolean) \(b)"
        case .double(let d): return "(double) \(d)"
        case .bigNumber(let s): return "(big number) " + s
        case .bulkError(let b): return "(error) " + String(buffer: b)
        case .verbatimString(_, let b): return "\"" + String(buffer: b) + "\""
        case .array(let a), .set(let a), .push(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .map(let p): return "{" + p.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .attribute(let p, let v): return "|" + p.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "| " + v.description
        }
    }

    private static func line(_ buffer: inout ByteBuffer, _ type: StaticString, _ text: String) {
        buffer.writeStaticString(type)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
    }

    private static func bulk(_ buffer: inout ByteBuffer, _ type: StaticString, _ payload: ByteBuffer) {
        buffer.writeStaticString(type)
        buffer.writeString(String(payload.readableBytes))
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(payload)
        buffer.writeStaticString("\r\n")
    }

    private static func aggregate(_ buffer: inout ByteBuffer, _ type: StaticString, _ elements: [RESPValue]) {
        Self.line(&buffer, type, String(elements.count))
        for element in elements { element.encode(into: &buffer) }
    }

    private static func pairs(_ buffer: inout ByteBuffer, _ type: StaticString, _ pairs: [Pair]) {
        Self.line(&buffer, type, String(pairs.count))
        for pair in pairs {
            pair.key.encode(into: &buffer)
            pair.value.encode(into: &buffer)
        }
    }
}
