import MicroVM
import NIOCore
import NIOPosix

/// Reads a pipe or FIFO on an event loop until EOF, keeping the tail in a ``MicroVM/ConsoleRing``.
/// Draining continuously matters: a VMM blocked on a full stdout pipe would stall its vCPUs.
enum PipeDrain {
    /// Takes ownership of `fd` (it is closed when the channel closes). Returns the channel so the
    /// owner can close it early (a FIFO whose writer never appears would otherwise stay open).
    static func start(fd: CInt, into ring: ConsoleRing, group: any EventLoopGroup) async throws -> any Channel {
        try await NIOPipeBootstrap(group: group)
            .channelOption(.autoRead, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RingWriter(ring: ring))
                }
            }
            .takingOwnershipOfDescriptor(input: fd)
            .get()
    }
}

private final class RingWriter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let ring: ConsoleRing

    init(ring: ConsoleRing) { self.ring = ring }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { ring.append($0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // EOF on a pipe: nothing more will come; close our side.
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
