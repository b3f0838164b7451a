import Logging
import NIOCore
import RESP

/// Writes requests and matches replies to them in FIFO order (Redis answers in order on a connection).
///
/// Everything runs on the channel's event loop; other threads only reach it through
/// `eventLoop.execute`, which is why the `@unchecked Sendable` is sound.
final class RedisChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var decoder: NIOSingleStepByteToMessageProcessor<RESPTokenDecoder>
    private var pending = CircularBuffer<RedisRequest>(initialCapacity: 16)
    private var context: ChannelHandlerContext?
    /// Once set, the connection is finished and new requests fail at once.
    private var closedError: RedisError?
    private var timeoutTimer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Dedicated connections close on cancellation: the server may still answer (or BLPOP may still
    /// pop an element) for the abandoned command, and nothing else must ever read that reply.
    private let closeOnCancel: Bool
    private let logger: Logger
    /// Set once connected when ``RedisClientConfiguration/replyBusyPoll`` is on and the socket was found.
    private var busyPoll: (poller: ReplyBusyPoller, descriptor: CInt)?
    private let busyPollBudget: TimeAmount?
    /// Set by ``enterSubscriberMode(_:)``: every frame goes here instead of to a request, and the
    /// connection's end is reported here too.
    private var subscriber: (@Sendable (Result<RESPToken, RedisError>) -> Void)?
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop, limits: RESPDecodingLimits, closeOnCancel: Bool, busyPoll: Duration, logger: Logger) {
        self.eventLoop = eventLoop
        self.busyPollBudget = busyPoll > .zero ? .nanoseconds(busyPoll.nanoseconds) : nil
        self.decoder = NIOSingleStepByteToMessageProcessor(RESPTokenDecoder(limits: limits), maximumBufferSize: nil)
        self.closeOnCancel = closeOnCancel
        self.logger = logger
    }

    // MARK: - Requests (event loop only)

    func submit(_ request: RedisRequest) {
        eventLoop.assertInEventLoop()
        if request.cancelRequested {
            request.fail(RedisError(code: .cancelled, command: request.commandName, message: "cancelled before it was sent"))
            return
        }
        if let closedError {
            var error = closedError
            error.command = request.commandName
            error.wasNotSent = true
            request.fail(error)
            return
        }
        guard let context else {
            request.fail(RedisError(code: .connectionClosed, command: request.commandName, message: "connection is not active", wasNotSent: true))
            return
        }
        request.state = .written
        pending.append(request)
        context.writeAndFlush(wrapOutboundOut(request.encoded), promise: nil)
        if request.pollForReply, let busyPoll {
            busyPoll.poller.written(on: busyPoll.descriptor)
        }
        if let deadline = request.deadline, timerDeadline.map({ deadline < $0 }) ?? true {
            timeoutTimer?.cancel()
            scheduleTimeoutCheck(at: deadline)
        }
    }

    func cancel(_ request: RedisRequest) {
        eventLoop.assertInEventLoop()
        switch request.state {
        case .created:
            request.cancelRequested = true
            if closeOnCancel {
                // Callers of close-on-cancel connections wait for the close; keep that promise simple.
                shutDown(RedisError(code: .connectionClosed, message: "connection closed because a command on it was cancelled"))
            }
        case .finished:
            break
        case .written:
            request.fail(RedisError(code: .cancelled, command: request.commandName, message: "cancelled while waiting for the reply"))
            if closeOnCancel {
                shutDown(RedisError(code: .connectionClosed, message: "connection closed because a command on it was cancelled"))
            }
            // On a shared connection the reply still arrives and is dropped by `receive`.
        }
    }

    func close() {
        eventLoop.assertInEventLoop()
        shutDown(RedisError(code: .connectionClosed, message: "connection closed by the client"))
    }

    var pendingCount: Int { pending.count }

    /// Turns the connection into a subscriber's (``RedisSubscription``): from now on it carries no
    /// request/reply traffic, `sink` gets every frame the server sends and, once, the error that ended
    /// the connection. Only with no request in flight (after the handshake), so no reply is mistaken
    /// for a pushed frame.
    func enterSubscriberMode(_ sink: @escaping @Sendable (Result<RESPToken, RedisError>) -> Void) {
        eventLoop.assertInEventLoop()
        precondition(pending.isEmpty, "subscriber mode with requests in flight")
        if let closedError {
            sink(.failure(closedError))
            return
        }
        subscriber = sink
    }

    /// Writes commands of a subscriber (SUBSCRIBE, PING) whose answers come back as frames to the sink.
    func writeSubscriberCommand(_ encoded: ByteBuffer) {
        eventLoop.assertInEventLoop()
        guard closedError == nil, let context else { return }
        context.writeAndFlush(wrapOutboundOut(encoded), promise: nil)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let busyPollBudget, let descriptor = ReplyBusyPoller.descriptor(local: context.channel.localAddress, remote: context.channel.remoteAddress) {
            busyPoll = (ReplyBusyPoller.shared(for: eventLoop, budget: busyPollBudget), descriptor)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown(RedisError(code: .connectionClosed, message: "connection closed by the server or the network"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("redis connection error", metadata: ["error": "\(error)"])
        shutDown(RedisError(code: .connectionClosed, message: "connection failed", underlying: error))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try decoder.process(buffer: buffer) { token in
                self.deliver(token)
            }
        } catch let error as RESPParsingError {
            logger.warning("invalid RESP from server, closing connection", metadata: ["error": "\(error)"])
            shutDown(RedisError(code: .protocolError, message: "server sent invalid RESP: \(error)", underlying: error))
        } catch {
            shutDown(RedisError(code: .protocolError, message: "server sent invalid RESP", underlying: error))
        }
    }

    private func deliver(_ token: RESPToken) {
        if let subscriber {
            subscriber(.success(token))
            return
        }
        if token.identifier == .push {
            // Out-of-band RESP3 data (e.g. client-side caching invalidations) is not a reply.
            logger.debug("ignoring RESP3 push message")
            return
        }
        guard let head = pending.first else {
            // A reply nobody asked for means replies and requests are out of step: unrecoverable.
            shutDown(RedisError(code: .protocolError, message: "unexpected reply from server: \(token)"))
            return
        }
        if head.receive(token) {
            pending.removeFirst()
            if head.pollForReply, let busyPoll {
                busyPoll.poller.finished(on: busyPoll.descriptor)
            }
        }
    }

    // MARK: - Shutdown and timeouts

    private func shutDown(_ error: RedisError) {
        guard closedError == nil else { return }
        closedError = error
        timeoutTimer?.cancel()
        timeoutTimer = nil
        timerDeadline = nil
        let failed = pending
        if let busyPoll {
            // Before NIO closes the descriptor, whose number may then be reused.
            busyPoll.poller.finished(on: busyPoll.descriptor, count: failed.count { $0.pollForReply })
            self.busyPoll = nil
        }
        pending.removeAll()
        if let subscriber {
            self.subscriber = nil
            subscriber(.failure(error))
        }
        for request in failed {
            var e = error
            e.command = request.commandName
            request.fail(e)
        }
        context?.close(promise: nil)
    }

    private func scheduleTimeoutCheck(at deadline: NIODeadline) {
        timerDeadline = deadline
        timeoutTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            timeoutTimer = nil
            timerDeadline = nil
            checkTimeouts()
        }
    }

    private func checkTimeouts() {
        let now = NIODeadline.now()
        var earliest: NIODeadline?
        var expired: RedisRequest?
        for request in pending where request.state != .finished {
            guard let deadline = request.deadline else { continue }
            if deadline <= now {
                expired = expired ?? request
            } else if earliest == nil || deadline < earliest! {
                earliest = deadline
            }
        }
        if let expired {
            // The reply may still come; closing is the only way to be sure it is never given to the next command.
            expired.fail(RedisError(code: .timeout, command: expired.commandName, message: "no reply within the command timeout; connection closed"))
            shutDown(RedisError(code: .connectionClosed, message: "connection closed after a command timed out"))
        } else if let earliest {
            scheduleTimeoutCheck(at: earliest)
        }
    }
}

extension RedisError {
    init(code: Code, command: String? = nil, message: String, underlying: (any Error)? = nil, wasNotSent: Bool) {
        self.init(code: code, command: command, message: message, underlying: underlying)
        self.wasNotSent = wasNotSent
    }
}
