import AgentProtocol
import NIOCore

/// What the decoder hands up the pipeline.
enum AgentInbound: Sendable {
    /// Firecracker accepted the `CONNECT`; the number is its host-side port.
    case handshakeAccepted(hostPort: UInt32)
    case message(AgentMessage)
}

/// Splits the agent byte stream into messages: first the optional Firecracker handshake line, then
/// frames. Frame sizes are checked against ``AgentFrameLimit`` from the header alone, so a hostile
/// guest cannot make the host buffer more than the limit.
final class AgentChannelDecoder: ByteToMessageDecoder {
    typealias InboundOut = AgentInbound

    /// Longest `OK <hostport>\n` line accepted.
    static let maximumHandshakeLine = 64

    private var awaitingHandshake: Bool
    private let limit: AgentFrameLimit

    init(awaitingHandshake: Bool, limit: AgentFrameLimit) {
        self.awaitingHandshake = awaitingHandshake
        self.limit = limit
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if awaitingHandshake {
            let view = buffer.readableBytesView.prefix(Self.maximumHandshakeLine)
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.readableBytes >= Self.maximumHandshakeLine {
                    throw AgentConnectionError.handshake("no newline in the first \(Self.maximumHandshakeLine) bytes of the vsock handshake reply")
                }
                return .needMoreData
            }
            let length = newline - view.startIndex
            let line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0] == "OK", let port = UInt32(parts[1]) else {
                throw AgentConnectionError.handshake("unexpected vsock handshake reply \(String(reflecting: line))")
            }
            awaitingHandshake = false
            context.fireChannelRead(wrapInboundOut(.handshakeAccepted(hostPort: port)))
            return .continue
        }

        guard buffer.readableBytes >= AgentFrame.headerSize else { return .needMoreData }
        // The magic before the length: garbage (console noise on the port) is reported as such, at once,
        // not as a frame of whatever size its bytes 4-7 happen to spell.
        if let magic = buffer.getBytes(at: buffer.readerIndex, length: 3), magic != AgentFrame.magic {
            throw AgentFrameError(.badMagic, "stream is not at a frame boundary")
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        // The version is checked by AgentFrameDecoder; the size must be checked before buffering.
        let maximum = limit.value
        guard Int(length) <= maximum else {
            throw AgentFrameError(.tooLarge, "frame of \(length) bytes exceeds the host limit of \(maximum)")
        }
        let frameSize = AgentFrame.headerSize + Int(length)
        guard buffer.readableBytes >= frameSize else { return .needMoreData }
        var frameDecoder = AgentFrameDecoder(maximumPayload: Int(length))
        frameDecoder.append(buffer.readableBytesView.prefix(frameSize))
        buffer.moveReaderIndex(forwardBy: frameSize)
        guard let message = try frameDecoder.next() else {
            throw AgentFrameError(.invalidPayload, "complete frame did not decode")
        }
        context.fireChannelRead(wrapInboundOut(.message(message)))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is dropped: the reader sees the EOF and reports it.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
