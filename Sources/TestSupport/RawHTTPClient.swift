import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A status server's reply as it came off the socket.
public struct RawHTTPResponse: Sendable {
    public let text: String
    /// False when the client gave up waiting and closed first.
    public var closedByServer = true

    /// The status code of the first response.
    public var status: Int? {
        let parts = text.split(separator: " ", maxSplits: 2)
        return parts.count >= 2 && parts[0].hasPrefix("HTTP/1.") ? Int(parts[1]) : nil
    }

    /// Everything after the first response's head.
    public var body: String {
        guard let end = text.range(of: "\r\n\r\n") else { return "" }
        return String(text[end.upperBound...])
    }

    /// A header of the first response, by lowercased name.
    public func header(_ name: String) -> String? {
        let head = text.range(of: "\r\n\r\n").map { text[..<$0.lowerBound] } ?? Substring(text)
        for line in head.split(separator: "\r\n").dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == name { return pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// How many responses the text holds (for pipelined requests).
    public var responseCount: Int { text.components(separatedBy: "HTTP/1.1 ").count - 1 }
}

/// Writes raw bytes to a loopback port and reads until the server closes: exact control over what is
/// sent (oversized heads, bad methods, garbage), no client library in between.
public enum RawHTTPClient {
    /// Sends `request` and reads until the server closes. If it has not closed within `deadline`, the
    /// client closes and the response says so, so a server that never closes fails a test, not hangs it.
    public static func exchange(port: Int, _ request: String, deadline: Duration = .seconds(20)) async throws -> RawHTTPResponse {
        let channel = try await connect(port: port)
        let gaveUp = ClientGaveUp()
        let underlying = channel.channel
        let timer = underlying.eventLoop.scheduleTask(in: TimeAmount(deadline)) {
            gaveUp.flag.store(true, ordering: .relaxed)
            underlying.close(promise: nil)
        }
        defer { timer.cancel() }
        let text = try await channel.executeThenClose { inbound, outbound in
            if !request.isEmpty { try await outbound.write(ByteBuffer(string: request)) }
            var received = ByteBuffer()
            do {
                for try await chunk in inbound { received.writeImmutableBuffer(chunk) }
            } catch where gaveUp.flag.load(ordering: .relaxed) {
                // Our own close ends the read with an error; what arrived before still counts.
            }
            return String(buffer: received)
        }
        return RawHTTPResponse(text: text, closedByServer: !gaveUp.flag.load(ordering: .relaxed))
    }

    /// `GET path` with `connection: close`.
    public static func get(port: Int, _ path: String, deadline: Duration = .seconds(20)) async throws -> RawHTTPResponse {
        try await exchange(port: port, "GET \(path) HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n", deadline: deadline)
    }

    /// Whether a status server answers `/healthz` on the port. Not merely whether something accepts
    /// connections: other processes on this machine pick free ports too, and may take one a stopped
    /// server just gave up.
    public static func statusServerAnswers(port: Int) async -> Bool {
        guard let response = try? await get(port: port, "/healthz", deadline: .seconds(2)) else { return false }
        return response.status == 200 && response.body == "ok\n"
    }

    public static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    private final class ClientGaveUp: Sendable {
        let flag = Atomic<Bool>(false)
    }
}
