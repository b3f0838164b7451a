import EgressProxy
import Testing

@Suite struct RequestHeadParserTests {
    private func parse(_ text: String, maxHeadBytes: Int = 8 * 1024) throws(RequestHeadError) -> RequestHeadParser.Outcome {
        try RequestHeadParser.parse(Array(text.utf8), maxHeadBytes: maxHeadBytes)
    }

    private func error(_ text: String, maxHeadBytes: Int = 8 * 1024) -> RequestHeadError? {
        do {
            _ = try parse(text, maxHeadBytes: maxHeadBytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsADNSNameLowercasingIt() throws {
        let head = "CONNECT Example.COM:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8.5.0\r\n\r\n"
        let outcome = try parse(head)
        #expect(outcome == .complete(ConnectRequest(host: .name("example.com"), port: 443), headLength: head.utf8.count))
    }

    @Test func acceptsAnIPv4LiteralOverHTTP10() throws {
        let head = "CONNECT 93.184.216.34:80 HTTP/1.0\r\n\r\n"
        let request = ConnectRequest(host: .address(IPAddress("93.184.216.34")!), port: 80, version: .http10)
        #expect(try parse(head) == .complete(request, headLength: head.utf8.count))
    }

    @Test func acceptsABracketedIPv6Literal() throws {
        let head = "CONNECT [2606:4700::1111]:443 HTTP/1.1\r\n\r\n"
        let outcome = try parse(head)
        #expect(outcome == .complete(ConnectRequest(host: .address(.v6(0x2606_4700 << 96 | 0x1111)), port: 443), headLength: head.utf8.count))
        if case .complete(let request, _) = outcome { #expect(request.description == "[2606:4700::1111]:443") }
    }

    @Test func acceptsAHeadWithoutHeaderFields() throws {
        let head = "CONNECT a.example:443 HTTP/1.1\r\n\r\n"
        #expect(try parse(head) == .complete(ConnectRequest(host: .name("a.example"), port: 443), headLength: head.utf8.count))
    }

    @Test func reportsTheHeadLengthSoBytesAfterItStayWithTheTunnel() throws {
        let head = "CONNECT a.example:443 HTTP/1.1\r\n\r\n"
        let outcome = try parse(head + "\u{16}\u{03}\u{01}hello")
        #expect(outcome == .complete(ConnectRequest(host: .name("a.example"), port: 443), headLength: head.utf8.count))
    }

    @Test func isIncompleteAtEveryPrefixWhenTheHeadArrivesInPieces() throws {
        let head = Array("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Connection: keep-alive\r\n\r\n".utf8)
        for end in 0..<head.count {
            #expect(try RequestHeadParser.parse(Array(head[..<end])) == .incomplete, "prefix of \(end) bytes")
        }
        #expect(try RequestHeadParser.parse(head) == .complete(ConnectRequest(host: .address(.v6(1)), port: 443), headLength: head.count))
    }

    @Test func treatsTheMethodAsCaseSensitive() {
        #expect(error("connect example.com:443 HTTP/1.1\r\n\r\n")?.kind == .methodNotAllowed)
        #expect(error("Connect example.com:443 HTTP/1.1\r\n\r\n")?.status == .methodNotAllowed)
    }

    @Test func refusesOtherMethodsWith405AsSoonAsTheMethodIsKnown() {
        let get = error("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(get?.status.code == 405)
        #expect(get?.message.contains("CONNECT") == true)
        // No need to wait for the rest of the head.
        #expect(error("POST ")?.status.code == 405)
    }

    @Test func requiresAPort() {
        #expect(error("CONNECT example.com HTTP/1.1\r\n\r\n")?.message.contains("port") == true)
        #expect(error("CONNECT example.com: HTTP/1.1\r\n\r\n")?.status == .badRequest)
        #expect(error("CONNECT [::1] HTTP/1.1\r\n\r\n")?.status == .badRequest)
    }

    @Test(arguments: ["0", "65536", "99999", "123456", "-1", "+443", "44a", "0x1bb"])
    func refusesPortsOutOfRange(port: String) {
        let failure = error("CONNECT example.com:\(port) HTTP/1.1\r\n\r\n")
        #expect(failure?.status == .badRequest)
        #expect(failure?.message.contains("port") == true)
    }

    @Test func acceptsTheExtremePorts() throws {
        #expect(try parse("CONNECT a.example:1 HTTP/1.1\r\n\r\n") != .incomplete)
        #expect(try parse("CONNECT a.example:65535 HTTP/1.1\r\n\r\n") != .incomplete)
    }

    @Test(arguments: [
        "\u{16}\u{03}\u{01}\u{02}\u{00}",               // a TLS ClientHello sent without CONNECT
        "CONNECT  example.com:443 HTTP/1.1\r\n\r\n",     // two spaces
        "CONNECT example.com:443\r\n\r\n",               // no version
        "CONNECT example.com:443 HTTP/2.0\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1 x\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\n\n",          // bare LF
        "CONNECT example.com:443 HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",  // bare CR
        "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nno colon\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n: empty name\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nX: a\u{0}b\r\n\r\n",
        " CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "\r\nCONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "CONNECT http://example.com:443/ HTTP/1.1\r\n\r\n",
        "CONNECT 2606:4700::1111:443 HTTP/1.1\r\n\r\n",  // IPv6 without brackets
        "CONNECT [1.2.3.4]:443 HTTP/1.1\r\n\r\n",
        "CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n",
        "CONNECT [::1:443 HTTP/1.1\r\n\r\n",
        "CONNECT 127.1:443 HTTP/1.1\r\n\r\n",             // inet_aton shorthand for 127.0.0.1
        "CONNECT 2130706433:443 HTTP/1.1\r\n\r\n",        // 127.0.0.1 as one number
        "CONNECT 0x7f.0.0.1:443 HTTP/1.1\r\n\r\n",
        "CONNECT 256.1.1.1:443 HTTP/1.1\r\n\r\n",
        "CONNECT a..example:443 HTTP/1.1\r\n\r\n",
        "CONNECT .example:443 HTTP/1.1\r\n\r\n",
        "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
        "CONNECT :443 HTTP/1.1\r\n\r\n",
    ])
    func refusesMalformedHeadsWith400(head: String) {
        #expect(error(head)?.status == .badRequest)
    }

    @Test func refusesOverlongLabelsAndNames() {
        let label = String(repeating: "a", count: 64)
        #expect(error("CONNECT \(label).example:443 HTTP/1.1\r\n\r\n")?.status == .badRequest)
        let name = Array(repeating: String(repeating: "b", count: 50), count: 6).joined(separator: ".")
        #expect(error("CONNECT \(name):443 HTTP/1.1\r\n\r\n")?.status == .badRequest)
    }

    @Test func refusesAHeadThatDoesNotEndWithinTheCapWith431() throws {
        let filler = "X-Filler: " + String(repeating: "a", count: 200) + "\r\n"
        let head = "CONNECT example.com:443 HTTP/1.1\r\n" + String(repeating: filler, count: 50) + "\r\n"
        #expect(error(head)?.status.code == 431)
        // Without its end yet, too: waiting longer cannot help.
        #expect(error(String(head.prefix(8 * 1024)))?.kind == .tooLarge)
        // One endless request line.
        #expect(error("CONNECT " + String(repeating: "a", count: 9000))?.kind == .tooLarge)
    }

    @Test func acceptsAHeadOfExactlyTheCapAndNotOneByteMore() throws {
        let start = "CONNECT example.com:443 HTTP/1.1\r\nX: "
        let fill = String(repeating: "a", count: 100 - start.utf8.count - 4)
        let head = start + fill + "\r\n\r\n"
        #expect(head.utf8.count == 100)
        #expect(try parse(head, maxHeadBytes: 100) != .incomplete)
        #expect(error(head, maxHeadBytes: 99)?.kind == .tooLarge)
    }

    @Test func waitsForMoreWhileWhatArrivedCanStillBeAValidHead() throws {
        #expect(try parse("") == .incomplete)
        #expect(try parse("CONN") == .incomplete)
        #expect(try parse("CONNECT exam") == .incomplete)
        #expect(try parse("CONNECT example.com:443 HTTP/1.1\r") == .incomplete)
        #expect(try parse("CONNECT example.com:443 HTTP/1.1\r\nHost: exa") == .incomplete)
    }
}
