import EgressProxy
import Glibc
import Testing

/// serve() end to end over a socket pair, against real TCP servers on 127.0.0.1.
@Suite struct ServeTests {
    static let established = "HTTP/1.1 200 Connection established\r\n\r\n"

    @Test func tunnelsToAnAllowedServerAndEchoesBothWays() async throws {
        let server = try EchoServer()
        defer { server.stop() }
        let connection = ServedConnection(options: .local(port: server.port))

        // The first bytes of the tunnel ride in the same write as the head: they must not be lost.
        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nearly bytes")
        #expect(try TestSocket.receiveHead(connection.fd) == Self.established)
        #expect(try TestSocket.receive(connection.fd, count: 11) == Array("early bytes".utf8))

        // Enough to need many relay rounds; chunked so neither side's buffers fill up.
        var sent = 11
        for round in 0..<40 {
            let chunk = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            try TestSocket.send(connection.fd, chunk)
            #expect(try TestSocket.receive(connection.fd, count: chunk.count) == chunk)
            sent += chunk.count
        }

        // Half-close: our end of stream reaches the server, whose end of stream comes back to us.
        shutdown(connection.fd, Int32(SHUT_WR))
        #expect(try TestSocket.receiveToEnd(connection.fd).isEmpty)

        let report = await connection.finish()
        #expect(report.outcome == .tunnel(.closed))
        #expect(report.target == "127.0.0.1:\(server.port)")
        #expect(report.address == IPAddress("127.0.0.1"))
        #expect(report.bytesUp == sent)
        #expect(report.bytesDown == sent)
        #expect(report.exitCode == 0)
        #expect(server.acceptedCount == 1)
    }

    @Test func refusesLoopbackWithoutTheEscapeHatchAndNeverConnects() async throws {
        let (listener, port) = try TestSocket.listener()
        defer { close(listener) }
        var options = EgressOptions()
        options.allowedPorts = [port]
        let connection = ServedConnection(options: options)

        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n\r\n")
        let response = try TestSocket.receiveTextToEnd(connection.fd)
        #expect(response.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(response.contains("private or reserved"))
        #expect(response.contains("127.0.0.0/8"))

        let report = await connection.finish()
        guard case .refused(let status, _) = report.outcome else {
            Issue.record("expected a refusal, got \(report.outcome)")
            return
        }
        #expect(status == .forbidden)
        #expect(report.exitCode == 1)
        #expect(!TestSocket.hasPendingConnection(listener), "the proxy connected to a denied address")
    }

    @Test func refusesAPortOutsideTheAllowedSetBeforeConnecting() async throws {
        let (listener, port) = try TestSocket.listener()
        defer { close(listener) }
        var options = EgressOptions.local(port: port)
        options.allowedPorts = [443, 80]
        let connection = ServedConnection(options: options)

        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n\r\n")
        let response = try TestSocket.receiveTextToEnd(connection.fd)
        #expect(response.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(response.hasSuffix("\r\n\r\nport \(port) is not allowed; allowed ports: 80, 443\n"))
        _ = await connection.finish()
        #expect(!TestSocket.hasPendingConnection(listener))
    }

    @Test func closesTheTunnelAtTheByteCap() async throws {
        let server = try EchoServer()
        defer { server.stop() }
        var options = EgressOptions.local(port: server.port)
        options.maxBytes = 1000
        let connection = ServedConnection(options: options)

        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\n")
        #expect(try TestSocket.receiveHead(connection.fd) == Self.established)
        try TestSocket.send(connection.fd, [UInt8](repeating: 7, count: 600))
        // 600 up and 600 echoed would be 1200: the echo is cut where the total reaches 1000, so between
        // 400 and 500 bytes come back (depending on how the reads interleave), then the end of stream.
        let echoed = try TestSocket.receiveToEnd(connection.fd)
        #expect((400...500).contains(echoed.count), "\(echoed.count) bytes came back")

        let report = await connection.finish()
        #expect(report.outcome == .tunnel(.byteCapReached))
        #expect(report.bytesUp + report.bytesDown == 1000)
        #expect(report.bytesDown == echoed.count)
    }

    @Test func closesAnIdleTunnel() async throws {
        let server = try EchoServer()
        defer { server.stop() }
        var options = EgressOptions.local(port: server.port)
        options.idleTimeout = .milliseconds(200)
        let connection = ServedConnection(options: options)

        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\n")
        #expect(try TestSocket.receiveHead(connection.fd) == Self.established)
        #expect(try TestSocket.receiveToEnd(connection.fd).isEmpty)
        #expect(await connection.finish().outcome == .tunnel(.idleTimeout))
    }

    @Test func endsTheTunnelWhenTheGuestSideIsGoneAltogether() async throws {
        // An upstream server that keeps its end open and says nothing, so only the client's hangup can end it.
        let (listener, port) = try TestSocket.listener()
        defer { close(listener) }
        var options = EgressOptions.local(port: port)
        options.idleTimeout = .seconds(30)
        let connection = ServedConnection(options: options)
        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n\r\n")
        #expect(try TestSocket.receiveHead(connection.fd) == Self.established)
        let held = accept(listener, nil, nil)
        defer { close(held) }
        // finish() closes the test's end entirely, as QEMU's exit closes slirp's: the tunnel ends on that
        // hangup (closed), not after the idle timeout, because nothing could reach the guest any more.
        #expect(await connection.finish().outcome == .tunnel(.closed))
    }

    @Test func answers408WhenTheHeadDoesNotArriveInTime() async throws {
        var options = EgressOptions()
        options.headTimeout = .milliseconds(200)
        let connection = ServedConnection(options: options)
        try TestSocket.send(connection.fd, "CONNECT example.com:443 HTTP/1.1\r\n")
        let response = try TestSocket.receiveTextToEnd(connection.fd)
        #expect(response.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(await connection.finish().status == .requestTimeout)
    }

    @Test func answersParserErrorsWithTheirStatus() async throws {
        let cases: [(String, String)] = [
            ("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\n"),
            ("\u{16}\u{03}\u{01}", "HTTP/1.1 400 Bad Request\r\n"),
            ("CONNECT a.example:443 HTTP/1.1\r\n" + String(repeating: "X: y\r\n", count: 2000), "HTTP/1.1 431 "),
        ]
        for (request, expected) in cases {
            let connection = ServedConnection(options: EgressOptions())
            try TestSocket.send(connection.fd, request)
            let response = try TestSocket.receiveTextToEnd(connection.fd)
            #expect(response.hasPrefix(expected), "\(response)")
            #expect(response.contains("Connection: close\r\n"))
            _ = await connection.finish()
        }
    }

    @Test func answers400WhenTheClientEndsMidHeadAndNothingWhenItSentNothing() async throws {
        let partial = ServedConnection(options: EgressOptions())
        try TestSocket.send(partial.fd, "CONNECT a.example:443 HTTP/1.1\r\n")
        shutdown(partial.fd, Int32(SHUT_WR))
        #expect(try TestSocket.receiveTextToEnd(partial.fd).hasPrefix("HTTP/1.1 400 "))
        #expect(await partial.finish().status == .badRequest)

        let silent = ServedConnection(options: EgressOptions())
        shutdown(silent.fd, Int32(SHUT_WR))
        #expect(try TestSocket.receiveToEnd(silent.fd).isEmpty)
        guard case .clientLeft = await silent.finish().outcome else {
            Issue.record("a client that sent nothing should be reported as gone")
            return
        }
    }

    @Test func answers502ForANameThatDoesNotResolve() async throws {
        var options = EgressOptions()
        options.connectTimeout = .seconds(3)
        let connection = ServedConnection(options: options)
        // RFC 6761: .invalid never resolves. Without a reachable resolver the lookup times out instead (504).
        try TestSocket.send(connection.fd, "CONNECT no-such-host.invalid:443 HTTP/1.1\r\n\r\n")
        let response = try TestSocket.receiveTextToEnd(connection.fd)
        #expect(response.hasPrefix("HTTP/1.1 502 ") || response.hasPrefix("HTTP/1.1 504 "), "\(response)")
        #expect(response.contains("no-such-host.invalid"))
        _ = await connection.finish()
    }

    @Test func answers502WhenTheServerRefusesTheConnection() async throws {
        // A port bound but not listening: connecting is refused, and no other test can listen there.
        let (bound, port) = try TestSocket.bound()
        defer { close(bound) }
        let connection = ServedConnection(options: .local(port: port))
        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n\r\n")
        let response = try TestSocket.receiveTextToEnd(connection.fd)
        #expect(response.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), "\(response)")
        #expect(response.contains("Connection refused"))
        _ = await connection.finish()
    }
}
