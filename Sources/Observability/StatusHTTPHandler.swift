import NIOCore
import NIOHTTP1

/// Answers each request with ``StatusRoutes`` once it has fully arrived, and closes connections
/// that go idle or break the protocol.
final class StatusHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: StatusRoutes
    private var head: HTTPRequestHead?

    init(routes: StatusRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        switch routes.respond(to: request) {
        case .now(let response):
            write(response, to: request, context: context)
        case .later(let produce):
            // The HTTP pipeline handler holds further requests of this connection until this response's end is
            // written, so answers stay in order while this one waits off the event loop.
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                let response = await produce()
                eventLoop.execute {
                    let (handler, context) = bound.value
                    guard context.channel.isActive else { return }
                    handler.write(response, to: request, context: context)
                }
            }
        }
    }

    private func write(_ response: StatusResponse, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = response.keepAlive && request.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        for header in response.headers { headers.add(name: header.name, value: header.value) }
        if response.status == .methodNotAllowed { headers.add(name: "allow", value: "GET") }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // HTTPServerProtocolErrorHandler has already answered 400 to a parse error; nothing here is worth keeping the connection for.
        context.close(promise: nil)
    }
}
