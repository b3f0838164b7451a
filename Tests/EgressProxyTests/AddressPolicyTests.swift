import EgressProxy
import Testing

@Suite struct AddressPolicyTests {
    /// Every denied range at least once (both ends where it matters), beside public neighbours just
    /// outside them. The second field is the range the reason must name; nil means allowed.
    static let table: [(String, String?)] = [
        // IPv4, denied
        ("0.0.0.0", "0.0.0.0/8"),
        ("0.255.255.255", "0.0.0.0/8"),
        ("10.0.0.1", "10.0.0.0/8"),
        ("10.255.255.255", "10.0.0.0/8"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("100.127.255.254", "100.64.0.0/10"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.255.255.254", "127.0.0.0/8"),
        ("169.254.169.254", "169.254.0.0/16"),
        ("172.16.0.1", "172.16.0.0/12"),
        ("172.31.255.255", "172.16.0.0/12"),
        ("192.0.0.8", "192.0.0.0/24"),
        ("192.0.2.1", "192.0.2.0/24"),
        ("192.88.99.1", "192.88.99.0/24"),
        ("192.168.1.1", "192.168.0.0/16"),
        ("198.18.0.1", "198.18.0.0/15"),
        ("198.19.255.255", "198.18.0.0/15"),
        ("198.51.100.7", "198.51.100.0/24"),
        ("203.0.113.9", "203.0.113.0/24"),
        ("224.0.0.1", "224.0.0.0/4"),
        ("239.255.255.250", "224.0.0.0/4"),
        ("240.0.0.1", "240.0.0.0/4"),
        ("255.255.255.255", "240.0.0.0/4"),
        // IPv4, allowed: public, some right next to a denied range
        ("1.1.1.1", nil),
        ("8.8.8.8", nil),
        ("9.255.255.255", nil),
        ("11.0.0.0", nil),
        ("100.63.255.255", nil),
        ("100.128.0.0", nil),
        ("172.15.255.255", nil),
        ("172.32.0.0", nil),
        ("192.0.1.255", nil),
        ("192.0.3.0", nil),
        ("198.17.255.255", nil),
        ("198.20.0.0", nil),
        ("223.255.255.255", nil),
        // IPv6, denied
        ("::", "::/128"),
        ("::1", "::1/128"),
        ("::127.0.0.1", "::/96"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("::ffff:10.1.2.3", "10.0.0.0/8"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),
        ("::ffff:0.0.0.0", "0.0.0.0/8"),
        ("64:ff9b::a00:1", "10.0.0.0/8"),
        ("64:ff9b::7f00:1", "127.0.0.0/8"),
        ("64:ff9b:1::1", "64:ff9b:1::/48"),
        ("100::1", "100::/64"),
        ("2001::1", "2001::/32"),
        ("2001:db8::1", "2001:db8::/32"),
        ("2002:7f00:1::1", "127.0.0.0/8"),
        ("2002:c0a8:101::1", "192.168.0.0/16"),
        ("fc00::1", "fc00::/7"),
        ("fd12:3456:789a::1", "fc00::/7"),
        ("fe80::1", "fe80::/10"),
        ("febf:ffff::1", "fe80::/10"),
        ("fec0::1", "fec0::/10"),
        ("ff02::1", "ff00::/8"),
        ("ff05::1:3", "ff00::/8"),
        // IPv6, allowed
        ("2606:4700::1111", nil),
        ("2001:4860:4860::8888", nil),
        ("2a00:1450:4001:80b::200e", nil),
        ("::ffff:1.1.1.1", nil),
        ("64:ff9b::808:808", nil),
        ("2002:808:808::1", nil),
        ("100:0:0:1::1", nil),
        ("2001:1::1", nil),
        ("fbff:ffff::1", nil),
    ]

    @Test(arguments: table)
    func decides(address text: String, deniedRange: String?) throws {
        let address = try #require(IPAddress(text))
        let decision = AddressPolicy().decide(address)
        if let deniedRange {
            guard case .denied(let reason) = decision else {
                Issue.record("\(text) was allowed; expected denied as in \(deniedRange)")
                return
            }
            #expect(reason.contains(deniedRange), "\(reason)")
            #expect(reason.hasPrefix(address.description))
        } else {
            #expect(decision == .allowed)
        }
    }

    @Test func exceptionsAllowOnlyTheListedAddress() throws {
        let loopback = try #require(IPAddress("127.0.0.1"))
        let policy = AddressPolicy(exceptions: [loopback])
        #expect(policy.decide(loopback) == .allowed)
        #expect(!policy.decide(try #require(IPAddress("127.0.0.2"))).isAllowed)
        // The mapped spelling of an excepted address is a different address and stays denied.
        #expect(!policy.decide(try #require(IPAddress("::ffff:127.0.0.1"))).isAllowed)
    }

    @Test func deniesTheHostsOwnPublicAddresses() throws {
        let own = try #require(IPAddress("203.1.2.3"))
        let policy = AddressPolicy(localAddresses: [own])
        #expect(policy.decide(own) == .denied(reason: "203.1.2.3 is an address of this host"))
        #expect(policy.decide(try #require(IPAddress("203.1.2.4"))) == .allowed)
    }

    @Test func parsesOnlyStrictAddressSyntax() {
        for text in ["127.1", "0x7f000001", "2130706433", "1.2.3.4.5", "01.2.3.4x", "fe80::1%eth0", "[::1]", "", "::g"] {
            #expect(IPAddress(text) == nil, "\(text)")
        }
        #expect(IPAddress("10.1.2.3") == .v4(0x0A01_0203))
        #expect(IPAddress("::ffff:10.1.2.3") == .v6(0xFFFF_0A01_0203))
        #expect(IPAddress("2606:4700:0:0:0:0:0:1111")?.description == "2606:4700::1111")
        #expect(IPAddress("::1")?.authorityForm == "[::1]")
    }
}
