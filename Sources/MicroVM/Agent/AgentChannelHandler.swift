import NIOCore

/// Last handler of the agent pipeline: passes decoded messages, errors and EOF to the mailbox.
final class AgentChannelHandler: ChannelInboundHandler {
    typealias InboundIn = AgentInbound

    private let mailbox: AgentMailbox

    init(mailbox: AgentMailbox) { self.mailbox = mailbox }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !mailbox.deliver(unwrapInboundIn(data)) {
            mailbox.close(error: AgentConnectionError.queueOverflow)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A decoding error leaves the stream unsynchronised: nothing after it can be trusted.
        mailbox.close(error: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        mailbox.close(error: nil)
        context.fireChannelInactive()
    }
}
