import AgentProtocol
import FoundationEssentials
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A scripted agent on a Unix socket, standing in for QEMU's chardev or Firecracker's vsock socket
/// so AgentConnection can be tested without a VM.
final class FakeAgentPeer: Sendable {
    enum Action: Sendable {
        case frame(AgentMessage)
        case raw([UInt8])
        case close
    }

    struct Script: Sendable {
        /// Reply to `CONNECT <port>\n`: the actions for the n-th connection (0-based); nil = no handshake expected.
        var handshake: (@Sendable (_ connection: Int, _ line: String) -> [Action])?
        /// Sent when the channel opens (after the handshake if there is one).
        var greeting: [Action] = [.frame(.hello(AgentHello(agentVersion: "fake-1", kernel: "Linux fake")))]
        /// Answer to each request.
        var onRequest: @Sendable (RunRequest) -> [Action] = { request in
            [.frame(.result(FakeAgentPeer.result(for: request, stdout: "ran \(request.id)\n")))]
        }
    }

    let path: String
    private let channel: any Channel
    private let counter: ConnectionCounter

    /// Connections accepted so far.
    var connectionCount: Int { counter.count }

    private init(path: String, channel: any Channel, counter: ConnectionCounter) {
        self.path = path
        self.channel = channel
        self.counter = counter
    }

    static func start(at path: String, script: Script) async throws -> FakeAgentPeer {
        unlink(path)
        let counter = ConnectionCounter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                let index = counter.next()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeAgentHandler(script: script, connection: index))
                }
            }
            .bind(unixDomainSocketPath: path).get()
        return FakeAgentPeer(path: path, channel: channel, counter: counter)
    }

    func stop() async {
        try? await channel.close()
        unlink(path)
    }

    static func result(for request: RunRequest, stdout: String, verdict: Verdict = .ok, exitCode: Int32? = 0) -> RunResult {
        RunResult(
            id: request.id, verdict: verdict, exitCode: exitCode, signal: nil, stdout: Data(stdout.utf8), stderr: Data(),
            stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 1, cpuTimeMilliseconds: 1, peakMemoryBytes: 1)
    }
}

private final class ConnectionCounter: Sendable {
    private let value = Atomic<Int>(0)

    var count: Int { value.load(ordering: .relaxed) }

    /// The index of a new connection.
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

private final class FakeAgentHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let script: FakeAgentPeer.Script
    private let connection: Int
    private var awaitingHandshake: Bool
    private var pending: [UInt8] = []
    private var decoder = AgentFrameDecoder()

    init(script: FakeAgentPeer.Script, connection: Int) {
        self.script = script
        self.connection = connection
        awaitingHandshake = script.handshake != nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if !awaitingHandshake { perform(script.greeting, context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if awaitingHandshake {
            pending += bytes
            guard let newline = pending.firstIndex(of: UInt8(ascii: "\n")) else { return }
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            let rest = Array(pending[(newline + 1)...])
            pending = []
            awaitingHandshake = false
            let actions = script.handshake!(connection, line)
            perform(actions, context: context)
            if actions.contains(where: { if case .close = $0 { return true } else { return false } }) { return }
            perform(script.greeting, context: context)
            decoder.append(rest)
        } else {
            decoder.append(bytes)
        }
        while true {
            guard let message = try? decoder.next() else { return }
            if case .run(let request) = message { perform(script.onRequest(request), context: context) }
        }
    }

    private func perform(_ actions: [FakeAgentPeer.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .frame(let message):
                let frame = (try? AgentFrame.encode(message)) ?? []
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: frame)), promise: nil)
            case .raw(let bytes):
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            case .close:
                context.close(promise: nil)
                return
            }
        }
    }
}
