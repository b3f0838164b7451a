/// Parses the request head a guest sends the proxy: `CONNECT host:port HTTP/1.1`, header fields, an
/// empty line. A pure function of the bytes received so far, so the caller can feed it after every read.
///
/// Strict on purpose: lines end in CRLF (a bare CR or LF is an error, the classic request-smuggling
/// ambiguity), the method is case-sensitive as RFC 9110 says (`connect` is an unknown method: 405),
/// and a numeric-looking host must be a dotted quad (no `127.1`, `0x7f.1`, `2130706433`). Header fields
/// are syntax-checked and otherwise ignored.
public enum RequestHeadParser {
    public enum Outcome: Equatable, Sendable {
        /// No complete head yet and nothing wrong so far: read more.
        case incomplete
        /// A complete head of `headLength` bytes (through the empty line); bytes after it belong to the tunnel.
        case complete(ConnectRequest, headLength: Int)
    }

    /// Parses `bytes`, the start of the client's stream. Errors as soon as the bytes seen cannot start a
    /// valid head (a TLS ClientHello sent without CONNECT is refused at its first byte), and with
    /// `.tooLarge` once `maxHeadBytes` bytes hold no complete head.
    public static func parse(_ bytes: [UInt8], maxHeadBytes: Int = 8 * 1024) throws(RequestHeadError) -> Outcome {
        let limit = min(bytes.count, maxHeadBytes)
        let window = bytes[0..<limit]
        let requestLineEnd = try lineEnd(in: window, from: 0)
        try checkMethodPrefix(window[0..<(requestLineEnd ?? limit)])
        guard let requestLineEnd else { return try incomplete(bytes.count, maxHeadBytes) }
        let request = try parseRequestLine(window[0..<requestLineEnd])

        var start = requestLineEnd + 2
        while let end = try lineEnd(in: window, from: start) {
            if end == start { return .complete(request, headLength: end + 2) }
            try checkHeaderField(window[start..<end])
            start = end + 2
        }
        return try incomplete(bytes.count, maxHeadBytes)
    }

    private static func incomplete(_ count: Int, _ maxHeadBytes: Int) throws(RequestHeadError) -> Outcome {
        if count >= maxHeadBytes {
            throw RequestHeadError(.tooLarge, "request head exceeds \(maxHeadBytes) bytes")
        }
        return .incomplete
    }

    /// Index of the CR of the first CRLF at or after `start`, nil if the line is not complete yet.
    private static func lineEnd(in bytes: ArraySlice<UInt8>, from start: Int) throws(RequestHeadError) -> Int? {
        var index = start
        while index < bytes.endIndex {
            switch bytes[index] {
            case .lf:
                throw RequestHeadError(.malformed, "line ends in a bare LF; lines must end in CRLF")
            case .cr:
                guard index + 1 < bytes.endIndex else { return nil }
                guard bytes[index + 1] == .lf else { throw RequestHeadError(.malformed, "bare CR in request head") }
                return index
            default:
                index += 1
            }
        }
        return nil
    }

    /// Checks the method while the request line is still arriving, so non-HTTP bytes are refused at once.
    private static func checkMethodPrefix(_ line: ArraySlice<UInt8>) throws(RequestHeadError) {
        let method = line.prefix { $0 != .space }
        guard method.allSatisfy(isTokenByte) else {
            throw RequestHeadError(.malformed, "not an HTTP request; send 'CONNECT host:port HTTP/1.1'")
        }
        guard method.count <= 32 else { throw RequestHeadError(.malformed, "method too long") }
        if method.count < line.count {  // the method is complete
            guard !method.isEmpty else { throw RequestHeadError(.malformed, "request line starts with a space") }
            guard method.elementsEqual("CONNECT".utf8) else { throw methodNotAllowed }
        }
    }

    static let methodNotAllowed = RequestHeadError(
        .methodNotAllowed, "this proxy only tunnels HTTPS: use CONNECT host:port (plain HTTP proxying is not supported)")

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(RequestHeadError) -> ConnectRequest {
        let parts = line.split(separator: .space, omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw RequestHeadError(.malformed, "request line must be 'CONNECT host:port HTTP/1.1'")
        }
        guard parts[0].elementsEqual("CONNECT".utf8) else { throw methodNotAllowed }
        guard let version = HTTPVersion(rawValue: String(decoding: parts[2], as: UTF8.self)) else {
            throw RequestHeadError(.malformed, "unsupported HTTP version; use HTTP/1.1 or HTTP/1.0")
        }
        let (host, port) = try parseAuthority(parts[1])
        return ConnectRequest(host: host, port: port, version: version)
    }

    /// `host:port`, `a.b.c.d:port` or `[v6]:port` (RFC 9110 authority-form).
    static func parseAuthority(_ target: ArraySlice<UInt8>) throws(RequestHeadError) -> (ConnectHost, UInt16) {
        let hostPart: ArraySlice<UInt8>
        let portPart: ArraySlice<UInt8>
        if target.first == UInt8(ascii: "[") {
            guard let close = target.firstIndex(of: UInt8(ascii: "]")) else {
                throw RequestHeadError(.malformed, "unterminated IPv6 literal in target")
            }
            hostPart = target[(target.startIndex + 1)..<close]
            let rest = target[(close + 1)...]
            guard rest.first == UInt8(ascii: ":") else { throw missingPort }
            portPart = rest.dropFirst()
        } else {
            guard let colon = target.lastIndex(of: UInt8(ascii: ":")) else { throw missingPort }
            hostPart = target[..<colon]
            portPart = target[(colon + 1)...]
            if hostPart.contains(UInt8(ascii: ":")) {
                throw RequestHeadError(.malformed, "an IPv6 literal must be in brackets: CONNECT [2001:db8::1]:443")
            }
        }
        let port = try parsePort(portPart)
        if target.first == UInt8(ascii: "[") {
            guard hostPart.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }),
                  let address = IPAddress(String(decoding: hostPart, as: UTF8.self)), case .v6 = address
            else { throw RequestHeadError(.malformed, "invalid IPv6 literal in target") }
            return (.address(address), port)
        }
        return (try parseHost(hostPart), port)
    }

    static let missingPort = RequestHeadError(.malformed, "target must be host:port (the port is missing)")

    private static func parsePort(_ digits: ArraySlice<UInt8>) throws(RequestHeadError) -> UInt16 {
        guard (1...5).contains(digits.count), digits.allSatisfy(isDigit) else {
            throw digits.isEmpty ? missingPort : RequestHeadError(.malformed, "port must be a number from 1 to 65535")
        }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard (1...65535).contains(value) else {
            throw RequestHeadError(.malformed, "port must be a number from 1 to 65535")
        }
        return UInt16(value)
    }

    private static func parseHost(_ bytes: ArraySlice<UInt8>) throws(RequestHeadError) -> ConnectHost {
        let invalid = RequestHeadError(.malformed, "host must be a DNS name, a dotted-quad IPv4 or a bracketed IPv6 address")
        guard bytes.allSatisfy({ isAlphanumeric($0) || $0 == .dash || $0 == .dot || $0 == .underscore }) else {
            throw invalid
        }
        let name = bytes.last == .dot ? bytes.dropLast() : bytes
        let labels = name.split(separator: .dot, omittingEmptySubsequences: false)
        guard !name.isEmpty, name.count <= 253, labels.allSatisfy({ (1...63).contains($0.count) }) else { throw invalid }
        // A name whose last label is numeric is an IPv4 address in some spelling; only the dotted quad is accepted.
        if let last = labels.last, last.allSatisfy(isDigit) {
            guard bytes.last != .dot, let address = IPAddress(String(decoding: bytes, as: UTF8.self)),
                  case .v4 = address
            else { throw RequestHeadError(.malformed, "a numeric host must be a dotted-quad IPv4 address") }
            return .address(address)
        }
        return .name(String(decoding: bytes.map(lowercased), as: UTF8.self))
    }

    private static func checkHeaderField(_ line: ArraySlice<UInt8>) throws(RequestHeadError) {
        guard line.first != .space, line.first != .tab else {
            throw RequestHeadError(.malformed, "obsolete header line folding is not accepted")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
              line[..<colon].allSatisfy(isTokenByte)
        else { throw RequestHeadError(.malformed, "header field must be 'Name: value'") }
        guard line[(colon + 1)...].allSatisfy({ $0 == .tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw RequestHeadError(.malformed, "control character in a header field value")
        }
    }

    // RFC 9110 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let dot = UInt8(ascii: ".")
    static let dash = UInt8(ascii: "-")
    static let underscore = UInt8(ascii: "_")
}
