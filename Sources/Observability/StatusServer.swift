import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// A small HTTP/1.1 server for operators: `GET /metrics` (Prometheus text exposition of a registry),
/// `GET /healthz` (200 `ok` while the process runs), `GET /readyz` (200 `ready`, perhaps with a
/// warning, or 503 with the reason), `GET /fleet.json` (the fleet from Redis) and `GET /` (a live dashboard of
/// both, docs/fleet.md). Other paths are 404, other methods 405.
///
/// It binds in ``start(configuration:registry:readiness:eventLoopGroup:logger:)``, so a taken port
/// fails the start rather than the running service group, and ``port`` is known before ``run()``.
/// ``run()`` serves until graceful shutdown or cancellation, then closes the listener and every
/// open connection.
public final class StatusServer: Service, Sendable, CustomStringConvertible {
    /// The address actually bound (its port is the chosen one when the configuration asked for 0).
    public let localAddress: SocketAddress
    private let listener: any Channel
    private let connections: ConnectionTracker
    private let logger: Logger

    /// The bound port.
    public var port: Int { localAddress.port ?? 0 }

    public var description: String { "StatusServer(\(localAddress))" }

    private init(localAddress: SocketAddress, listener: any Channel, connections: ConnectionTracker, logger: Logger) {
        self.localAddress = localAddress
        self.listener = listener
        self.connections = connections
        self.logger = logger
    }

    /// Binds and starts accepting; serve with ``run()`` (in a `ServiceGroup`) or stop with ``close()``.
    /// - Parameters:
    ///   - registry: what `/metrics` exposes.
    ///   - readiness: asked on every `/readyz`, on an event loop: it must be quick and not block.
    ///   - fleet: the fleet's status as JSON for `/fleet.json` and the dashboard at `/` (asked per request, off the
    ///     event loop; a throw answers 503 with the error); nil answers 404 at `/fleet.json`.
    /// - Throws: when the address cannot be bound (in use, not local, not resolvable).
    public static func start(
        configuration: StatusServerConfiguration, registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () -> Readiness, fleet: (@Sendable () async throws -> String)? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) async throws -> StatusServer {
        let connections = ConnectionTracker(limit: configuration.maxConnections)
        let routes = StatusRoutes(
            registry: registry, readiness: readiness, fleet: fleet,
            refuseNamedHosts: StatusServerConfiguration.isLoopback(configuration.host))
        let maxHeadBytes = configuration.maxHeadBytes
        let idleTimeout = TimeAmount(configuration.idleTimeout)
        let listener = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client that shuts down its side after the request (`nc -N`, some probes) still gets
            // its answer; HTTPServerPipelineHandler closes once it is written.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                guard connections.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try pipeline.addHandler(HeadSizeLimiter(limit: maxHeadBytes))
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(StatusHTTPHandler(routes: routes))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        guard let localAddress = listener.localAddress else {
            listener.close(promise: nil)
            throw StatusServerError(message: "bound \(configuration.host):\(configuration.port) but the socket has no address")
        }
        logger.notice("status server listening", metadata: ["address": "\(localAddress)"])
        return StatusServer(localAddress: localAddress, listener: listener, connections: connections, logger: logger)
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await listener.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            self.close()
        }
        logger.debug("status server stopped")
    }

    /// Stops accepting and closes every open connection (a response being written is cut short).
    public func close() {
        listener.close(promise: nil)
        connections.closeAll()
    }
}

/// The status server could not start.
public struct StatusServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
