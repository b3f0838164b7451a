import Glibc

/// An IPv4 or IPv6 address as a plain value, so the address policy can be a pure function over it.
///
/// IPv4 is held as a 32-bit and IPv6 as a 128-bit integer, most significant byte first (network order
/// read as a number), which makes prefix matching a shift and a compare.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses the textual forms `inet_pton` accepts: strict dotted-quad IPv4 (no `127.1`, no octal or
    /// hex parts) and RFC 4291 IPv6 without a zone (`fe80::1%eth0` is rejected). Nil for anything else.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(in6: v6)
            return
        }
        return nil
    }

    init(in4 address: in_addr) {
        self = .v4(UInt32(bigEndian: address.s_addr))
    }

    init(in6 address: in6_addr) {
        var value: UInt128 = 0
        withUnsafeBytes(of: address) { bytes in
            for byte in bytes { value = value << 8 | UInt128(byte) }
        }
        self = .v6(value)
    }

    /// The address in its network byte order.
    var bytes: [UInt8] {
        switch self {
        case .v4(let value): (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let value): (0..<16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) }
        }
    }

    /// The IPv4 address in the low 32 bits of an IPv6 address (for v4-mapped and NAT64 forms).
    var lowV4: IPAddress? {
        guard case .v6(let value) = self else { return nil }
        return .v4(UInt32(truncatingIfNeeded: value))
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 as `inet_ntop` writes it.
    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let bytes = self.bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// How a URL authority writes it: IPv6 in brackets.
    public var authorityForm: String {
        switch self {
        case .v4: description
        case .v6: "[\(description)]"
        }
    }
}
