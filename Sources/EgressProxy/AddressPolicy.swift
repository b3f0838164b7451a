/// Which destination addresses a guest may reach: the public internet, never the host's networks.
///
/// A pure function of the address (and of the two sets it is built with), so it is tested as a table.
/// The proxy applies it to every address a name resolves to, never to the name itself, so no spelling
/// of a host (`localhost`, `0x7f000001`, a DNS name pointing at 10.0.0.1) gets around it.
public struct AddressPolicy: Sendable {
    /// Addresses allowed even though they are in a denied range. Tests only (`--allow-address`).
    public var exceptions: Set<IPAddress>
    /// Addresses configured on the host's own interfaces: denied even when public, because connecting
    /// to the host's public address reaches services bound to 0.0.0.0 on the host itself.
    public var localAddresses: Set<IPAddress>

    public init(exceptions: Set<IPAddress> = [], localAddresses: Set<IPAddress> = []) {
        self.exceptions = exceptions
        self.localAddresses = localAddresses
    }

    /// Whether the proxy may connect to `address`, and if not, why.
    public func decide(_ address: IPAddress) -> AddressDecision {
        if exceptions.contains(address) { return .allowed }
        if let reason = AddressPolicy.reservedReason(address) { return .denied(reason: reason) }
        if localAddresses.contains(address) { return .denied(reason: "\(address) is an address of this host") }
        return .allowed
    }

    /// Names the special-purpose range `address` falls in, or nil for a globally routable address.
    public static func reservedReason(_ address: IPAddress) -> String? {
        switch address {
        case .v4(let value):
            if let range = ipv4Ranges.first(where: { $0.contains(value) }) { return "\(address) is in \(range)" }
            return nil
        case .v6(let value):
            guard let range = ipv6Ranges.first(where: { $0.contains(value) }) else { return nil }
            guard let embedded = range.embeddedV4(value) else { return "\(address) is in \(range)" }
            // Translated forms reach whatever IPv4 address they carry: judge that one.
            if let inner = reservedReason(.v4(embedded)) { return "\(address) is in \(range), carrying \(inner)" }
            return nil
        }
    }

    // IANA IPv4 Special-Purpose Address Registry, every block not marked globally reachable.
    static let ipv4Ranges: [Prefix<UInt32>] = [
        Prefix(0x0000_0000, 8, "0.0.0.0/8 (this network)"),
        Prefix(0x0A00_0000, 8, "10.0.0.0/8 (private use)"),
        Prefix(0x6440_0000, 10, "100.64.0.0/10 (shared address space, carrier-grade NAT)"),
        Prefix(0x7F00_0000, 8, "127.0.0.0/8 (loopback)"),
        Prefix(0xA9FE_0000, 16, "169.254.0.0/16 (link-local, cloud metadata)"),
        Prefix(0xAC10_0000, 12, "172.16.0.0/12 (private use)"),
        Prefix(0xC000_0000, 24, "192.0.0.0/24 (IETF protocol assignments)"),
        Prefix(0xC000_0200, 24, "192.0.2.0/24 (documentation)"),
        Prefix(0xC058_6300, 24, "192.88.99.0/24 (6to4 relay anycast)"),
        Prefix(0xC0A8_0000, 16, "192.168.0.0/16 (private use)"),
        Prefix(0xC612_0000, 15, "198.18.0.0/15 (benchmarking)"),
        Prefix(0xC633_6400, 24, "198.51.100.0/24 (documentation)"),
        Prefix(0xCB00_7100, 24, "203.0.113.0/24 (documentation)"),
        Prefix(0xE000_0000, 4, "224.0.0.0/4 (multicast)"),
        Prefix(0xF000_0000, 4, "240.0.0.0/4 (reserved, limited broadcast)"),
    ]

    // Order matters: the first match names the reason, and the exact ::/128 and ::1/128 come before ::/96.
    static let ipv6Ranges: [Prefix<UInt128>] = [
        Prefix(0, 128, "::/128 (unspecified)"),
        Prefix(1, 128, "::1/128 (loopback)"),
        Prefix(0, 96, "::/96 (deprecated IPv4-compatible)"),
        Prefix(0xFFFF_0000_0000, 96, "::ffff:0:0/96 (IPv4-mapped)", embedsV4At: 0),
        Prefix(0x0064_FF9B << 96, 96, "64:ff9b::/96 (NAT64)", embedsV4At: 0),
        Prefix(0x0064_FF9B_0001 << 80, 48, "64:ff9b:1::/48 (local-use NAT64)"),
        Prefix(0x0100 << 112, 64, "100::/64 (discard-only)"),
        Prefix(0x2001_0000 << 96, 32, "2001::/32 (Teredo)"),
        Prefix(0x2001_0DB8 << 96, 32, "2001:db8::/32 (documentation)"),
        Prefix(0x2002 << 112, 16, "2002::/16 (6to4)", embedsV4At: 80),
        Prefix(0xFC00 << 112, 7, "fc00::/7 (unique local)"),
        Prefix(0xFE80 << 112, 10, "fe80::/10 (link-local)"),
        Prefix(0xFEC0 << 112, 10, "fec0::/10 (deprecated site-local)"),
        Prefix(0xFF00 << 112, 8, "ff00::/8 (multicast)"),
    ]
}

/// The policy's answer for one address.
public enum AddressDecision: Equatable, Sendable {
    case allowed
    /// The reason names the address and the range it is in, e.g. `10.0.0.1 is in 10.0.0.0/8 (private use)`.
    case denied(reason: String)

    public var isAllowed: Bool { self == .allowed }
}

/// A CIDR block with a human name; `embedsV4At` marks IPv6 translation prefixes that carry an IPv4
/// address at that bit offset (counted from the least significant bit).
struct Prefix<Value: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable, CustomStringConvertible {
    let value: Value
    let length: Int
    let name: String
    let embedsV4At: Int?

    init(_ value: Value, _ length: Int, _ name: String, embedsV4At: Int? = nil) {
        self.value = value
        self.length = length
        self.name = name
        self.embedsV4At = embedsV4At
    }

    func contains(_ address: Value) -> Bool {
        // Smart shifts: shifting by the full width yields 0, so a /0 matches everything.
        let drop = Value.bitWidth - length
        return address >> drop == value >> drop
    }

    func embeddedV4(_ address: Value) -> UInt32? {
        embedsV4At.map { UInt32(truncatingIfNeeded: address >> $0) }
    }

    var description: String { name }
}
