import AgentProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An in-process stand-in for Firecracker that follows its documented protocol:
/// - the API socket speaks HTTP/1.1; success is `204 No Content`, failure `400` with
///   `{"fault_message": "..."}`; `GET /` and `GET /version` answer JSON;
/// - `PUT /vsock` makes it listen on `uds_path`, where a host connection says `CONNECT <port>\n` and,
///   once `InstanceStart` was received and the port is the agent's, gets `OK <hostport>\n` and then
///   the agent protocol (hello, results). Before that it closes the connection, as Firecracker does
///   when nothing listens in the guest;
/// - snapshots (see FakeFirecracker+Snapshots.swift): `PATCH /vm`, `PUT /snapshot/create` (paused
///   VMs only) writing a state and a memory file, `PUT /snapshot/load` reading them back and, with
///   `resume_vm`, making the agent reachable on the vsock socket (the saved path or `vsock_override`);
///   the fake agent answers `resume` with a hello carrying its nonce, as the real agent does.
/// Every API request is recorded, so tests can check what the real client sent.
final class FakeFirecracker: Sendable {
    struct Request: Sendable, Equatable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: [UInt8]
        var json: String { String(decoding: body, as: UTF8.self) }
        /// The body as a JSON object (slashes unescaped), nil when it is not one.
        var object: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
    }

    enum Reply: Sendable {
        case noContent
        case json(status: Int, String)
        case fault(status: Int, String)
        /// Read the request, never answer.
        case never
        /// A status line and half a body, then close.
        case closeMidReply
    }

    typealias Responder = @Sendable (Request) -> Reply?

    let apiSocketPath: String
    let agentPort: UInt32
    let state = Mutex(State())
    private let responder: Responder
    private let group: MultiThreadedEventLoopGroup
    private let apiChannel: Mutex<(any Channel)?> = Mutex(nil)

    struct State {
        var requests: [Request] = []
        var started = false
        var paused = false
        /// The vsock `uds_path` as the VMM was given it, saved into snapshots.
        var vsockPath: String?
        var resumes: [AgentResume] = []
        var rejectResumes = false
        var vsockChannels: [any Channel] = []
        var vsockConnects: [String] = []
        var runs: [RunRequest] = []
        /// The logger FIFO from `PUT /logger`, written like Firecracker's log.
        var logFD: CInt = -1
    }

    /// Requests in arrival order.
    var requests: [Request] { state.withLock { $0.requests } }
    /// `CONNECT` lines seen on the vsock socket.
    var vsockConnects: [String] { state.withLock { $0.vsockConnects } }
    /// Run requests the fake agent received.
    var runs: [RunRequest] { state.withLock { $0.runs } }
    /// Resume messages the fake agent received.
    var resumes: [AgentResume] { state.withLock { $0.resumes } }

    /// - Parameter responder: overrides the reply for a request (nil: the documented default).
    /// Maps a path Firecracker is given to the host path (a jailed Firecracker sees its chroot as `/`).
    let hostPath: @Sendable (String) -> String

    init(
        apiSocketPath: String, agentPort: UInt32 = 1024, hostPath: @escaping @Sendable (String) -> String = { $0 },
        responder: @escaping Responder = { _ in nil }
    ) {
        self.apiSocketPath = apiSocketPath
        self.hostPath = hostPath
        self.agentPort = agentPort
        self.responder = responder
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    func start() async throws {
        unlink(apiSocketPath)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try channel.pipeline.syncOperations.addHandler(APIHandler(fake: self))
                }
            }
            .bind(unixDomainSocketPath: apiSocketPath).get()
        apiChannel.withLock { $0 = channel }
    }

    /// Runs `body` with a started peer and stops it afterwards, whatever happens.
    static func with<T>(
        apiSocketPath: String, hostPath: @escaping @Sendable (String) -> String = { $0 },
        responder: @escaping Responder = { _ in nil },
        _ body: (FakeFirecracker) async throws -> T
    ) async throws -> T {
        let peer = FakeFirecracker(apiSocketPath: apiSocketPath, hostPath: hostPath, responder: responder)
        do {
            try await peer.start()
            let result = try await body(peer)
            await peer.stop()
            return result
        } catch {
            await peer.stop()
            throw error
        }
    }

    func stop() async {
        let channels = state.withLock { $0.vsockChannels } + [apiChannel.withLock { $0 }].compactMap { $0 }
        for channel in channels { try? await channel.close() }
        let fd = state.withLock { state in
            defer { state.logFD = -1 }
            return state.logFD
        }
        if fd >= 0 { close(fd) }
        try? await group.shutdownGracefully()
        unlink(apiSocketPath)
    }

    // MARK: API

    fileprivate func handle(_ request: Request, on channel: any Channel) {
        state.withLock { $0.requests.append(request) }
        if let reply = responder(request) {
            if case .fault(_, let message) = reply { log("ERROR", "Received Error. Status code: 400 Bad Request. Message: \(message)") }
            send(reply, on: channel)
            return
        }
        switch (request.method, request.uri) {
        case ("GET", "/"):
            let started = state.withLock { $0.started }
            send(.json(status: 200, #"{"app_name":"Firecracker","id":"fake","state":"\#(started ? "Running" : "Not started")","vmm_version":"1.16.1"}"#), on: channel)
        case ("GET", "/version"):
            send(.json(status: 200, #"{"firecracker_version":"1.16.1"}"#), on: channel)
        case ("PUT", "/vsock"):
            guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
                let path = object["uds_path"] as? String
            else {
                send(.fault(status: 400, "An error occurred when deserializing the json body of a request: missing field `uds_path`"), on: channel)
                return
            }
            state.withLock { $0.vsockPath = path }
            startVsock(at: hostPath(path)).whenComplete { result in
                switch result {
                case .success: self.send(.noContent, on: channel)
                case .failure(let error): self.send(.fault(status: 400, "Cannot create vsock device: \(error)"), on: channel)
                }
            }
        case ("PUT", "/logger"):
            if let path = request.object?["log_path"] as? String {
                let fd = open(hostPath(path), O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                state.withLock { $0.logFD = fd }
            }
            log("INFO", "Running Firecracker v1.16.1")
            send(.noContent, on: channel)
        case ("PATCH", "/vm"), ("PUT", "/snapshot/create"), ("PUT", "/snapshot/load"):
            handleSnapshotRequest(request, on: channel)
        case ("PUT", "/actions"):
            if request.json.contains("InstanceStart") { state.withLock { $0.started = true } }
            send(.noContent, on: channel)
        default:
            send(.noContent, on: channel)
        }
    }

    func log(_ level: String, _ message: String) {
        let fd = state.withLock { $0.logFD }
        guard fd >= 0 else { return }
        let line = Array("2026-11-29T00:00:00.000000000 [fake:fc_api] \(level) \(message)\n".utf8)
        _ = line.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
    }

    func send(_ reply: Reply, on channel: any Channel) {
        switch reply {
        case .noContent:
            write("HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n", on: channel)
        case .json(let status, let body):
            write(Self.response(status: status, body: body), on: channel)
        case .fault(let status, let message):
            write(Self.response(status: status, body: #"{"fault_message":"\#(message)"}"#), on: channel)
        case .never:
            break
        case .closeMidReply:
            channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"firecracker_ver")).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    private static func response(status: Int, body: String) -> String {
        let reason = status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error"
        return "HTTP/1.1 \(status) \(reason)\r\nServer: Firecracker API\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    private func write(_ text: String, on channel: any Channel) {
        channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
    }

    // MARK: vsock

    func startVsock(at path: String) -> EventLoopFuture<Void> {
        unlink(path)
        return ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(VsockHandler(fake: self))
                }
            }
            .bind(unixDomainSocketPath: path)
            .map { channel in self.state.withLock { $0.vsockChannels.append(channel) } }
    }

    fileprivate func vsockConnect(line: String) -> Bool {
        state.withLock { state in
            state.vsockConnects.append(line)
            return state.started && line == "CONNECT \(agentPort)"
        }
    }

    fileprivate func agentReply(to message: AgentMessage) -> AgentMessage? {
        if case .resume(let resume) = message { return resumeReply(to: resume) }
        guard case .run(let request) = message else { return nil }
        state.withLock { $0.runs.append(request) }
        let stdout: String
        switch request.workload {
        case .shell(let command): stdout = "fake guest ran: \(command)\n"
        case .program(let language, _), .project(let language, _): stdout = "fake guest ran a \(language.rawValue) program\n"
        }
        return .result(RunResult(
            id: request.id, verdict: .ok, exitCode: 0, signal: nil, stdout: Data(stdout.utf8), stderr: Data(),
            stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 1, cpuTimeMilliseconds: 1,
            peakMemoryBytes: 4096))
    }
}

private final class APIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    let fake: FakeFirecracker
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(fake: FakeFirecracker) { self.fake = fake }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            fake.handle(
                FakeFirecracker.Request(method: head.method.rawValue, uri: head.uri, headers: headers, body: body),
                on: context.channel)
            self.head = nil
        }
    }
}

/// Firecracker's host-side vsock: a `CONNECT <port>\n` line, then `OK <hostport>\n` and a byte
/// stream to the guest (here: a fake agent that says hello and answers runs).
private final class VsockHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let fake: FakeFirecracker
    private var line: [UInt8] = []
    private var connected = false
    private var decoder = AgentFrameDecoder()

    init(fake: FakeFirecracker) { self.fake = fake }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        var bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if !connected {
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
                line += bytes
                return
            }
            line += bytes[..<newline]
            bytes = Array(bytes[(newline + 1)...])
            guard fake.vsockConnect(line: String(decoding: line, as: UTF8.self)) else {
                context.close(promise: nil)
                return
            }
            connected = true
            var reply = context.channel.allocator.buffer(string: "OK 1073741824\n")
            let hello = try! AgentFrame.encode(.hello(AgentHello(agentVersion: "fake-agent", kernel: "Linux fake")))
            reply.writeBytes(hello)
            context.writeAndFlush(NIOAny(reply), promise: nil)
        }
        decoder.append(bytes)
        while let message = try? decoder.next() {
            if let answer = fake.agentReply(to: message), let frame = try? AgentFrame.encode(answer) {
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: frame)), promise: nil)
            }
        }
    }
}
