import Glibc

/// The guest's side of job networking. The host attaches a network device only to the VM of a job
/// that asked for network on a worker that allows it, and behind it there is nothing but the host's
/// egress proxy: QEMU's user networking with `restrict=on` and one forwarded address,
/// `10.0.2.100:3128`, where an HTTP CONNECT proxy decides what may be reached (docs/network.md).
/// So the guest needs no DNS and no route: an address on the proxy's subnet, and jobs told the proxy.
enum GuestNetwork {
    static let interface = "eth0"
    static let address = "10.0.2.15"
    static let netmask = "255.255.255.0"
    static let proxy = "http://10.0.2.100:3128"

    /// Whether the host attached a network device (checked once, at agent start).
    static let present: Bool = access("/sys/class/net/\(interface)", F_OK) == 0

    /// The proxy variables for a job's environment, when there is a network; both spellings, as tools
    /// disagree on which they read. Plain-HTTP proxying is not offered, so `http_proxy` is set too only
    /// to make such requests fail at the proxy with a clear answer rather than time out.
    static var jobEnvironment: [String] {
        guard present else { return [] }
        return ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"].map { "\($0)=\(proxy)" }
            + ["no_proxy=", "NO_PROXY="]
    }

    /// Brings up `lo` and, if present, `eth0` with its address. Failures are reported, not fatal: a job
    /// without network still runs, and one with network will say why it cannot connect.
    static func configure() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentError.system("socket for interface configuration") }
        defer { close(fd) }
        try bringUp("lo", fd: fd)
        guard present else { return }
        try setAddress(interface, address, request: siocsifaddr, fd: fd)
        try setAddress(interface, netmask, request: siocsifnetmask, fd: fd)
        try bringUp(interface, fd: fd)
    }

    // ioctl numbers from <linux/sockios.h>; Swift's Glibc module does not import them.
    private static let siocgifflags: UInt = 0x8913
    private static let siocsifflags: UInt = 0x8914
    private static let siocsifaddr: UInt = 0x8916
    private static let siocsifnetmask: UInt = 0x891c

    /// `struct ifreq`: 16 bytes of name, then a 24-byte union (a sockaddr, or the flags as a short).
    private static let ifreqSize = 40

    private static func bringUp(_ name: String, fd: Int32) throws {
        var request = try ifreq(name)
        try ioctl(fd, siocgifflags, &request, "read the flags of \(name)")
        let flags = request.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int16.self) }
        request.withUnsafeMutableBytes { $0.storeBytes(of: flags | Int16(IFF_UP) | Int16(IFF_RUNNING), toByteOffset: 16, as: Int16.self) }
        try ioctl(fd, siocsifflags, &request, "bring \(name) up")
    }

    private static func setAddress(_ name: String, _ text: String, request number: UInt, fd: Int32) throws {
        var request = try ifreq(name)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { throw AgentError(.system, "not an IPv4 address: \(text)") }
        request.withUnsafeMutableBytes { bytes in
            withUnsafeBytes(of: address) { source in
                for (index, byte) in source.enumerated() { bytes[16 + index] = byte }
            }
        }
        try ioctl(fd, number, &request, "set \(text) on \(name)")
    }

    private static func ifreq(_ name: String) throws -> [UInt8] {
        let bytes = Array(name.utf8)
        guard bytes.count < 16 else { throw AgentError(.system, "interface name \(name) too long") }
        var request = [UInt8](repeating: 0, count: ifreqSize)
        request.replaceSubrange(0..<bytes.count, with: bytes)
        return request
    }

    private static func ioctl(_ fd: Int32, _ number: UInt, _ request: inout [UInt8], _ what: String) throws {
        let result = request.withUnsafeMutableBytes { Glibc.ioctl(fd, number, $0.baseAddress!) }
        guard result == 0 else { throw AgentError.system(what) }
    }
}
