import NIOCore
import NIOPosix

/// A minimal client for QEMU's machine protocol (QMP): JSON objects, one per line, on a Unix socket.
/// It saves snapshots (`migrate` to a file) and loads a copy-on-write VM's state: commands and
/// replies, and the events a caller waits for; other events are skipped.
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
        /// Names of the events seen while waiting for replies, oldest first (bounded).
        fileprivate var events: [String] = []

        mutating func execute(_ command: String, arguments: String? = nil) async throws -> String {
            let request = arguments.map { #"{"execute":"\#(command)","arguments":\#($0)}"# } ?? #"{"execute":"\#(command)"}"#
            try await outbound.write(ByteBuffer(string: request + "\n"))
            while true {
                let line = try await nextObject()
                if try QMPLines.isReply(line, to: command) { return line }
                if let event = QMPLines.eventName(line), events.count < 64 { events.append(event) }
            }
        }

        /// Returns once QEMU has sent the event `name` on this connection (also while an earlier
        /// command waited for its reply).
        mutating func waitForEvent(_ name: String) async throws {
            if let seen = events.firstIndex(of: name) {
                events.removeSubrange(...seen)
                return
            }
            while true {
                let line = try await nextObject()
                if QMPLines.eventName(line) == name { return }
            }
        }

        mutating func nextObject() async throws -> String {
            try await lines.next()
        }
    }

    /// Lines from the NIO channel.
    fileprivate struct LineReader {
        var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var lines: QMPLines

        init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, pending: [UInt8] = []) {
            self.iterator = iterator
            self.lines = QMPLines(pending: pending)
        }

        mutating func next() async throws -> String {
            while true {
                if let line = try lines.next() { return line }
                guard var buffer = try await iterator.next() else { throw Failure(description: "QMP connection closed") }
                lines.append(buffer.readBytes(length: buffer.readableBytes) ?? [])
            }
        }
    }
}
