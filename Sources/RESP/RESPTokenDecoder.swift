import NIOCore

/// Splits a byte stream into validated ``RESPToken``s, for `ByteToMessageHandler` or
/// `NIOSingleStepByteToMessageProcessor`. Throws ``RESPParsingError`` on malformed input,
/// after which the stream is unusable.
public struct RESPTokenDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPToken

    public let limits: RESPDecodingLimits

    public init(limits: RESPDecodingLimits = .default) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPToken? {
        try RESPToken(consuming: &buffer, limits: limits)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPToken? {
        try decode(buffer: &buffer)
    }
}
