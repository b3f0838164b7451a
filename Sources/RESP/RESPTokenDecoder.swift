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

    /// Progress through a reply that has not fully arrived: a large reply is scanned once overall,
    /// not once per read.
    private var progress = RESPScanner.Progress()

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPToken? {
        do {
            guard let length = try RESPToken.length(of: buffer, limits: limits, progress: &progress) else { return nil }
            progress.reset()
            return RESPToken(validated: buffer.readSlice(length: length)!)
        } catch {
            progress.reset()
            throw error
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPToken? {
        try decode(buffer: &buffer)
    }
}
