import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RESP
import Synchronization

/// A subscription to Redis pub/sub channels and patterns on a connection of its own, as an `AsyncSequence`
/// of ``Event``s.
///
/// A subscribed connection carries nothing but pushed frames, so it is never one of a ``RedisClient``'s:
/// the subscription opens it with the same configuration (handshake, TLS, credentials), and when it drops
/// (Redis restarted, network gone, or a PING unanswered for a ``pingInterval``) reconnects with the configured
/// backoff, forever, and subscribes again. Every time the subscriptions are confirmed, on the first
/// connection and after each reconnect, it yields ``Event/subscribed(connection:)``: pub/sub delivers at
/// most once, so messages published while it was disconnected are lost, and a consumer that keeps state
/// elsewhere (a durable key) re-reads it then.
///
/// One consumer iterates it. Messages wait in a buffer of ``bufferLimit`` events; past it the oldest are
/// dropped (and counted in the log), so a slow consumer cannot make a flood of messages fill memory.
///
/// ```swift
/// let subscription = RedisSubscription(configuration: config, channels: ["jobs:cancel"], logger: logger)
/// defer { subscription.close() }
/// for await event in subscription {
///     if case .message(let message) = event { print(message.channel, String(buffer: message.payload)) }
/// }
/// ```
public final class RedisSubscription: AsyncSequence, Sendable {
    /// What the subscription yields.
    public enum Event: Sendable, Hashable {
        /// Every channel and pattern is subscribed on a fresh connection (`connection` counts them from 1):
        /// from here on no published message is missed until the next such event.
        case subscribed(connection: Int)
        /// A published message.
        case message(RedisPubSubMessage)
    }

    public typealias Element = Event
    public typealias AsyncIterator = AsyncStream<Event>.Iterator

    /// The channels given to `SUBSCRIBE`.
    public let channels: [String]
    /// The patterns given to `PSUBSCRIBE`.
    public let patterns: [String]
    /// Events kept for a slow consumer before the oldest are dropped.
    public let bufferLimit: Int
    /// How often the subscriber PINGs its connection; one that does not answer within the interval is taken
    /// for dead and replaced (a peer that vanished without closing the socket would otherwise go unnoticed).
    public let pingInterval: Duration

    private let events: AsyncStream<Event>
    private let task: Task<Void, Never>

    /// Starts subscribing at once, in the background; iterate to get the events.
    ///
    /// - Parameters:
    ///   - configuration: the server and handshake, as for a ``RedisClient``; ``RedisClientConfiguration/reconnect``
    ///     paces the reconnects (its `maxAttempts` does not apply: a subscription retries until closed).
    ///   - channels, patterns: at least one between them.
    public init(
        configuration: RedisClientConfiguration, channels: [String], patterns: [String] = [], bufferLimit: Int = 10_000,
        pingInterval: Duration = .seconds(10), eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis.subscription")
    ) {
        precondition(!channels.isEmpty || !patterns.isEmpty, "a subscription needs a channel or a pattern")
        self.channels = channels
        self.patterns = patterns
        self.bufferLimit = Swift.max(1, bufferLimit)
        self.pingInterval = pingInterval
        let (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(Swift.max(1, bufferLimit)))
        self.events = events
        let loop = SubscriptionLoop(
            configuration: configuration, channels: channels, patterns: patterns, pingInterval: pingInterval,
            eventLoop: eventLoopGroup.next(), output: continuation, logger: logger)
        self.task = Task { await loop.run() }
        continuation.onTermination = { [task] (_: AsyncStream<Event>.Continuation.Termination) in task.cancel() }
    }

    deinit {
        task.cancel()
    }

    public func makeAsyncIterator() -> AsyncStream<Event>.Iterator {
        events.makeAsyncIterator()
    }

    /// Unsubscribes by closing the connection; iteration ends. Idempotent.
    public func close() {
        task.cancel()
    }
}

/// A message published on a subscribed channel (or one matching a subscribed pattern).
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel it was published on.
    public var channel: String
    /// The pattern it matched, for a `PSUBSCRIBE`; nil for a channel subscription.
    public var pattern: String?
    /// The published bytes.
    public var payload: ByteBuffer

    public init(channel: String, pattern: String? = nil, payload: ByteBuffer) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}

/// The connect, subscribe, read, reconnect loop behind a ``RedisSubscription``.
private struct SubscriptionLoop: Sendable {
    let configuration: RedisClientConfiguration
    let channels: [String]
    let patterns: [String]
    let pingInterval: Duration
    let eventLoop: any EventLoop
    let output: AsyncStream<RedisSubscription.Event>.Continuation
    let logger: Logger

    func run() async {
        var attempt = 0
        var connections = 0
        let sslContext: NIOSSLContext?
        do {
            sslContext = try configuration.tls.map { try RedisTLSContextFactory.makeContext($0) }
        } catch {
            logger.error("cannot set up TLS for the subscription; it stays closed", metadata: ["error": "\(error)"])
            output.finish()
            return
        }
        while !Task.isCancelled {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: configuration, sslContext: sslContext, eventLoop: eventLoop, logger: logger,
                    closeOnCancel: true)
                connections += 1
                let confirmed = await serve(connection, number: connections)
                if confirmed { attempt = 0 }
            } catch {
                logger.debug("subscription connection failed", metadata: ["error": "\(error)", "attempt": "\(attempt + 1)"])
            }
            guard !Task.isCancelled else { break }
            // Capped so a long outage is retried at the backoff's maximum, not later and later.
            let delay = configuration.reconnect.backoff(afterAttempt: min(attempt, 16))
            attempt += 1
            do { try await Task.sleep(for: delay) } catch { break }
        }
        output.finish()
    }

    /// Subscribes on `connection` and forwards its frames until it closes or the task is cancelled.
    /// Returns whether the subscriptions were confirmed (a connection that dies before is a failed attempt).
    private func serve(_ connection: RedisConnection, number: Int) async -> Bool {
        let (frames, sink) = AsyncStream.makeStream(of: Result<RESPToken, RedisError>.self)
        let heard = HeardFlag()
        let handler = connection.handler
        let subscribe = subscribeCommands()
        handler.eventLoop.execute {
            handler.enterSubscriberMode { frame in
                heard.value.store(true, ordering: .relaxed)
                sink.yield(frame)
                if case .failure = frame { sink.finish() }
            }
            for command in subscribe { handler.writeSubscriberCommand(command) }
        }
        let expected = Set(channels.map { "subscribe:" + $0 } + patterns.map { "psubscribe:" + $0 })
        return await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await keepAlive(connection, heard: heard) }
                var confirmed = Set<String>()
                var announced = false
                for await frame in frames {
                    guard case .success(let token) = frame else { break }
                    switch try? token.decode(as: RESPPubSubFrame.self) {
                    case .message(let channel, let payload):
                        forward(.message(RedisPubSubMessage(channel: channel, payload: payload)))
                    case .patternMessage(let pattern, let channel, let payload):
                        forward(.message(RedisPubSubMessage(channel: channel, pattern: pattern, payload: payload)))
                    case .subscribed(let kind, let channel, _):
                        confirmed.insert("\(kind):\(channel)")
                        if !announced, confirmed.isSuperset(of: expected) {
                            announced = true
                            logger.debug("subscribed", metadata: ["connection": "\(number)"])
                            forward(.subscribed(connection: number))
                        }
                    case .unsubscribed, .pong:
                        break
                    case nil:
                        if let message = token.errorMessage {
                            // A refused SUBSCRIBE (ACL: no channel permission) would be retried in vain: say so loudly.
                            logger.error("the server refused a subscription command", metadata: ["error": "\(message)"])
                        } else {
                            logger.debug("skipped a frame that is not pub/sub", metadata: ["frame": "\(token)"])
                        }
                    }
                }
                group.cancelAll()
                connection.close()
                return announced
            }
        } onCancel: {
            connection.close()
        }
    }

    private func forward(_ event: RedisSubscription.Event) {
        if case .dropped = output.yield(event) {
            logger.warning("subscription buffer full; dropped the oldest event")
        }
    }

    private func subscribeCommands() -> [ByteBuffer] {
        var commands: [ByteBuffer] = []
        if !channels.isEmpty { commands.append(RedisCommand("SUBSCRIBE", arguments: channels).encoded) }
        if !patterns.isEmpty { commands.append(RedisCommand("PSUBSCRIBE", arguments: patterns).encoded) }
        return commands
    }

    /// PINGs every ``pingInterval``; when nothing at all came back since the previous PING, closes the connection.
    private func keepAlive(_ connection: RedisConnection, heard: HeardFlag) async {
        let handler = connection.handler
        let ping = RedisCommand("PING").encoded
        while !Task.isCancelled {
            heard.value.store(false, ordering: .relaxed)
            handler.eventLoop.execute { handler.writeSubscriberCommand(ping) }
            do { try await Task.sleep(for: pingInterval) } catch { return }
            if !heard.value.load(ordering: .relaxed) {
                logger.warning("subscription connection did not answer a PING within the ping interval; reconnecting")
                connection.close()
                return
            }
        }
    }
}

/// Set by every frame, cleared by each PING: whether the connection said anything since.
private final class HeardFlag: Sendable {
    let value = Atomic<Bool>(true)
}
