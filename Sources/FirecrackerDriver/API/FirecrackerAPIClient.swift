import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A reply from the Firecracker API.
public struct FirecrackerAPIResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
}

/// HTTP/1.1 client for Firecracker's API socket (a Unix socket; see the API spec, `swagger: 2.0`).
///
/// One connection per request: Firecracker serves one client at a time and the calls are few,
/// so reusing a connection would only add failure modes (a stale keep-alive after an error).
/// Every call is bounded by `requestTimeout`, which covers connect, send and the complete reply.
public struct FirecrackerAPIClient: Sendable {
    public let socketPath: String
    public var requestTimeout: Duration
    private let eventLoopGroup: any EventLoopGroup

    public init(
        socketPath: String,
        requestTimeout: Duration = .seconds(5),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.socketPath = socketPath
        self.requestTimeout = requestTimeout
        self.eventLoopGroup = eventLoopGroup
    }

    // MARK: Pre-boot configuration

    /// `PUT /machine-config`
    public func putMachineConfiguration(_ value: MachineConfiguration) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/machine-config", value)
    }

    /// `PUT /boot-source`
    public func putBootSource(_ value: BootSource) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/boot-source", value)
    }

    /// `PUT /drives/{drive_id}`
    public func putDrive(_ value: Drive) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/drives/\(value.driveId)", value)
    }

    /// `PUT /vsock`
    public func putVsock(_ value: Vsock) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/vsock", value)
    }

    /// `PUT /logger`
    public func putLogger(_ value: FirecrackerLogger) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/logger", value)
    }

    /// `PUT /metrics`
    public func putMetrics(_ value: Metrics) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/metrics", value)
    }

    /// `PUT /entropy`
    public func putEntropyDevice(_ value: EntropyDevice = EntropyDevice()) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/entropy", value)
    }

    // MARK: Actions and state

    /// `PUT /actions` with `InstanceStart`: boots the configured guest.
    public func startInstance() async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/actions", InstanceActionInfo(actionType: .instanceStart))
    }

    /// `PUT /actions` with `SendCtrlAltDel` (x86 only; the guest decides what to do with it).
    public func sendCtrlAltDel() async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/actions", InstanceActionInfo(actionType: .sendCtrlAltDel))
    }

    /// `PATCH /vm` `{"state": "Paused"}`
    public func pause() async throws(FirecrackerAPIError) {
        try await expectNoContent(.PATCH, "/vm", VmState(state: .paused))
    }

    /// `PATCH /vm` `{"state": "Resumed"}`
    public func resume() async throws(FirecrackerAPIError) {
        try await expectNoContent(.PATCH, "/vm", VmState(state: .resumed))
    }

    // MARK: Snapshots

    /// `PUT /snapshot/create`; the VM must be paused first.
    public func createSnapshot(_ value: SnapshotCreateParams) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/snapshot/create", value)
    }

    /// `PUT /snapshot/load`; only on a fresh process (logger and metrics may be set before).
    public func loadSnapshot(_ value: SnapshotLoadParams) async throws(FirecrackerAPIError) {
        try await expectNoContent(.PUT, "/snapshot/load", value)
    }

    // MARK: Queries

    /// `GET /`
    public func describeInstance() async throws(FirecrackerAPIError) -> InstanceInfo {
        try await getJSON("/", as: InstanceInfo.self)
    }

    /// `GET /version`
    public func version() async throws(FirecrackerAPIError) -> FirecrackerVersion {
        try await getJSON("/version", as: FirecrackerVersion.self)
    }

    // MARK: Transport

    private func expectNoContent(_ method: HTTPMethod, _ path: String, _ body: some Encodable) async throws(FirecrackerAPIError) {
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(body))
        } catch {
            throw FirecrackerAPIError(.invalidResponse, method: method.rawValue, path: path, detail: "cannot encode the request: \(error)")
        }
        _ = try await send(method, path, body: bytes)
    }

    private func getJSON<T: Decodable>(_ path: String, as type: T.Type) async throws(FirecrackerAPIError) -> T {
        let response = try await send(.GET, path, body: nil)
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw FirecrackerAPIError(
                .invalidResponse, method: "GET", path: path, status: response.status,
                detail: "undecodable \(T.self): \(String(decoding: response.body.prefix(512), as: UTF8.self))")
        }
    }

    /// Sends one request and returns a 2xx reply; any other status becomes an ``FirecrackerAPIError``
    /// carrying Firecracker's `fault_message`.
    public func send(_ method: HTTPMethod, _ path: String, body: [UInt8]?) async throws(FirecrackerAPIError) -> FirecrackerAPIResponse {
        let response: FirecrackerAPIResponse
        do {
            response = try await exchange(method, path, body: body)
        } catch let error as FirecrackerAPIError {
            throw error
        } catch is CancellationError {
            throw FirecrackerAPIError(.cancelled, method: method.rawValue, path: path, detail: "the calling task was cancelled")
        } catch {
            throw FirecrackerAPIError(.connectFailed, method: method.rawValue, path: path, detail: "\(error)")
        }
        guard (200..<300).contains(response.status) else {
            let fault = try? JSONDecoder().decode(FirecrackerFault.self, from: Data(response.body))
            let text = String(decoding: response.body.prefix(1024), as: UTF8.self)
            throw FirecrackerAPIError(
                .httpError, method: method.rawValue, path: path, status: response.status,
                faultMessage: fault?.faultMessage, detail: text)
        }
        return response
    }

    private func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]?) async throws -> FirecrackerAPIResponse {
        let loop = eventLoopGroup.next()
        let promise = loop.makePromise(of: FirecrackerAPIResponse.self)
        let context = RequestContext(method: method.rawValue, path: path)
        let timeout = requestTimeout
        let deadline = loop.scheduleTask(in: TimeAmount(timeout)) {
            promise.fail(FirecrackerAPIError(.timeout, method: context.method, path: context.path, detail: "no complete reply within \(timeout)"))
        }
        defer { deadline.cancel() }

        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, context: context))
                    }
                }
                .connect(unixDomainSocketPath: socketPath).get()
        } catch {
            let failure = FirecrackerAPIError(.connectFailed, method: method.rawValue, path: path, detail: "cannot connect to \(socketPath): \(error)")
            promise.fail(failure)
            throw failure
        }
        // A timeout or a cancelled caller closes the connection, which also releases the collector.
        promise.futureResult.whenFailure { _ in channel.close(promise: nil) }

        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "localhost")
        head.headers.add(name: "Accept", value: "application/json")
        if body != nil {
            head.headers.add(name: "Content-Type", value: "application/json")
        }
        head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)

        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }
}

private struct RequestContext: Sendable {
    var method: String
    var path: String
}

/// Gathers one response; fails the promise if the connection ends first.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<FirecrackerAPIResponse>
    private let context: RequestContext
    private var status: Int?
    private var body: [UInt8] = []
    /// Firecracker's replies are small JSON objects; anything this large is not Firecracker.
    private let maximumBody = 1 << 20

    init(promise: EventLoopPromise<FirecrackerAPIResponse>, context: RequestContext) {
        self.promise = promise
        self.context = context
    }

    func channelRead(context channelContext: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= maximumBody else {
                promise.fail(error(.invalidResponse, "reply body exceeds \(maximumBody) bytes"))
                channelContext.close(promise: nil)
                return
            }
            body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end:
            promise.succeed(FirecrackerAPIResponse(status: status ?? 0, body: body))
            channelContext.close(promise: nil)
        }
    }

    func channelInactive(context channelContext: ChannelHandlerContext) {
        let what = status == nil ? "before any reply" : "in the middle of the reply (status \(status!), \(body.count) body bytes)"
        promise.fail(error(.connectionClosed, "connection closed \(what)"))
        channelContext.fireChannelInactive()
    }

    func errorCaught(context channelContext: ChannelHandlerContext, error caught: any Error) {
        if let parserError = caught as? HTTPParserError, parserError == .invalidEOFState {
            // The decoder reports a close in the middle of a message as a parse error.
            promise.fail(error(.connectionClosed, "connection closed in the middle of the reply (status \(status.map(String.init) ?? "none"), \(body.count) body bytes)"))
        } else {
            promise.fail(error(.invalidResponse, "\(caught)"))
        }
        channelContext.close(promise: nil)
    }

    private func error(_ code: FirecrackerAPIError.Code, _ detail: String) -> FirecrackerAPIError {
        FirecrackerAPIError(code, method: context.method, path: context.path, status: status, detail: detail)
    }
}
