import NIOCore

/// Malformed or over-limit input seen by the RESP decoder. The connection that produced it
/// cannot be trusted any more and must be closed.
public struct RESPParsingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong, stable enough to assert on in tests and to alert on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidLeadingByte
            case invalidLineTerminator
            case lineTooLong
            case invalidInteger
            case invalidLength
            case bulkStringTooLarge
            case tooManyElements
            case nestingTooDeep
            case invalidBoolean
            case invalidDouble
            case invalidBigNumber
            case invalidVerbatimString
            case invalidNull
            case unsupportedStreamedType
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The first byte is not one of the RESP2/RESP3 type identifiers.
        public static let invalidLeadingByte = Code(.invalidLeadingByte)
        /// A line or a bulk payload is not followed by `\r\n`, or a line holds a bare `\r` / `\n`.
        public static let invalidLineTerminator = Code(.invalidLineTerminator)
        /// A simple string, error or number line is longer than ``RESPDecodingLimits/maxLineLength``.
        public static let lineTooLong = Code(.lineTooLong)
        /// `:` value is not a base-10 signed 64-bit integer.
        public static let invalidInteger = Code(.invalidInteger)
        /// A length or element count is not a number, or is negative other than the `-1` null forms.
        public static let invalidLength = Code(.invalidLength)
        /// A bulk string/error/verbatim string is longer than ``RESPDecodingLimits/maxBulkLength``.
        public static let bulkStringTooLarge = Code(.bulkStringTooLarge)
        /// An aggregate announces more elements than ``RESPDecodingLimits/maxAggregateCount``.
        public static let tooManyElements = Code(.tooManyElements)
        /// Aggregates nest deeper than ``RESPDecodingLimits/maxDepth``.
        public static let nestingTooDeep = Code(.nestingTooDeep)
        /// `#` is followed by something other than `t` or `f`.
        public static let invalidBoolean = Code(.invalidBoolean)
        /// `,` is followed by something that is not a double, `inf`, `-inf` or `nan`.
        public static let invalidDouble = Code(.invalidDouble)
        /// `(` is followed by something that is not a signed decimal integer.
        public static let invalidBigNumber = Code(.invalidBigNumber)
        /// `=` payload does not start with a three-byte format and `:`.
        public static let invalidVerbatimString = Code(.invalidVerbatimString)
        /// `_` is followed by a payload.
        public static let invalidNull = Code(.invalidNull)
        /// RESP3 streamed strings/aggregates (`$?`, `*?`): Redis never sends them, so they are refused.
        public static let unsupportedStreamedType = Code(.unsupportedStreamedType)

        public var description: String { base.rawValue }
    }

    /// What was wrong.
    public var code: Code
    /// Offset from the start of the value being decoded at which the problem was found.
    public var offset: Int
    /// Human-readable detail.
    public var message: String

    public init(code: Code, offset: Int, message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "RESP parsing error \(code) at offset \(offset): \(message)" }
}
