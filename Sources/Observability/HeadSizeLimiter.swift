import NIOCore

/// Refuses a request whose head (request line and headers) exceeds a limit, before the HTTP
/// decoder buffers it: NIO's decoder only stops at llhttp's built-in 80 KiB.
///
/// Sits first in the pipeline and counts raw bytes until the blank line that ends a head. Bodies are
/// counted too, as if they began the next head; the server takes no bodies (only GET), so a body only
/// makes the limit stricter for a client that is already wrong.
final class HeadSizeLimiter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let refusal = Array(
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".utf8)

    private let limit: Int
    private var headBytes = 0
    /// How much of "\r\n\r\n" the last bytes matched, so a terminator split across reads is found.
    private var matched = 0
    private var refused = false

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let buffer = unwrapInboundIn(data)
        for byte in buffer.readableBytesView {
            headBytes += 1
            let expected: UInt8 = matched % 2 == 0 ? 0x0D : 0x0A
            if byte == expected {
                matched += 1
                if matched == 4 {
                    headBytes = 0
                    matched = 0
                }
            } else {
                matched = byte == 0x0D ? 1 : 0
            }
            if headBytes > limit {
                refuse(context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    private func refuse(context: ChannelHandlerContext) {
        refused = true
        let channel = context.channel
        // Written from the first handler, so the bytes go straight to the socket, past the HTTP encoder.
        // Only the output is closed at first: closing with the client's bytes unread would send a
        // reset, and the client could lose the 431 with it. What it still sends is dropped above,
        // and the connection goes a second later whatever the client does.
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Self.refusal))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }
}
