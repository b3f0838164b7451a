import NIOCore
import NIOPosix

/// A minimal client for QEMU's machine protocol (QMP): JSON objects, one per line, on a Unix socket.
/// Used only to save a snapshot (`migrate` to a file), so it knows commands and replies and skips events.
/// It has no timeouts of its own: the caller bounds the whole conversation (see ``withDeadline(_:_:)``).
struct QMPClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
    }

    /// Connects, reads the greeting and negotiates capabilities, then runs `body`; closes afterwards.
    /// With `descriptor`, QEMU first receives that file descriptor under its name (QMP `getfd`),
    /// for commands that take a descriptor name (`migrate` to `fd:<name>`).
    static func withConnection<T: Sendable>(
        socketPath: String, passing descriptor: (fd: CInt, name: String)? = nil, _ body: (inout Session) async throws -> T
    ) async throws -> T {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        let wrap: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        guard let descriptor else {
            let channel = try await bootstrap.connect(unixDomainSocketPath: socketPath, channelInitializer: wrap)
            return try await channel.executeThenClose { inbound, outbound in
                var session = Session(lines: LineReader(inbound.makeAsyncIterator()), outbound: outbound)
                _ = try await session.nextObject()  // {"QMP": {"version": ...}}
                _ = try await session.execute("qmp_capabilities")
                return try await body(&session)
            }
        }
        // Blocking calls, bounded by the hand-over's own socket timeouts: off the event loops.
        let handOver = try await NIOThreadPool.singleton.runIfActive {
            try QMPDescriptorHandOver.connect(socketPath: socketPath, passing: descriptor.fd, as: descriptor.name)
        }
        let channel = try await bootstrap.withConnectedSocket(handOver.socket, channelInitializer: wrap)
        return try await channel.executeThenClose { inbound, outbound in
            var session = Session(lines: LineReader(inbound.makeAsyncIterator(), pending: handOver.leftover), outbound: outbound)
            return try await body(&session)
        }
    }

    /// One negotiated QMP connection.
    struct Session {
        fileprivate var lines: LineReader
        fileprivate let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        /// Runs `command` with `arguments` (a JSON object's text) and returns the `return` value's text.
        /// An `error` reply throws with QEMU's description.
        mutating func execute(_ command: String, arguments: String? = nil) async throws -> String {
            let request = arguments.map { #"{"execute":"\#(command)","arguments":\#($0)}"# } ?? #"{"execute":"\#(command)"}"#
            try await outbound.write(ByteBuffer(string: request + "\n"))
            while true {
                let line = try await nextObject()
                if line.hasPrefix(#"{"return""#) { return line }
                if line.hasPrefix(#"{"error""#) { throw Failure(description: "QMP \(command) failed: \(line)") }
                // Anything else is an asynchronous event (`{"timestamp":..., "event": ...}`).
            }
        }

        mutating func nextObject() async throws -> String {
            try await lines.next()
        }
    }

    /// Splits the byte stream into lines; bounded so a misbehaving peer cannot grow it without end.
    fileprivate struct LineReader {
        static let maximumLineBytes = 1 << 20
        var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var pending: [UInt8] = []

        init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, pending: [UInt8] = []) {
            self.iterator = iterator
            self.pending = pending
        }

        mutating func next() async throws -> String {
            while true {
                if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    let trimmed = line.trimmingSuffix(while: { $0 == "\r" || $0 == " " })
                    if trimmed.isEmpty { continue }
                    return trimmed
                }
                guard pending.count < Self.maximumLineBytes else { throw Failure(description: "QMP line longer than 1 MiB") }
                guard var buffer = try await iterator.next() else { throw Failure(description: "QMP connection closed") }
                pending += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var result = self
        while let last = result.last, predicate(last) { result.removeLast() }
        return result
    }
}
