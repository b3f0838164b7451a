import Dispatch
import Glibc
import Synchronization

/// Name resolution with the host's resolver (getaddrinfo), bounded by a timeout.
enum Resolver {
    enum Failure: Error {
        /// The name does not resolve (or resolves to no TCP address); carries gai_strerror's text.
        case notFound(String)
        case timedOut
    }

    /// The addresses `name` resolves to, deduplicated, in the resolver's preference order.
    ///
    /// The name is looked up as an absolute name (a trailing dot is added) so the host's resolv.conf
    /// search domains never turn a guest's `intranet` into `intranet.corp.example`. getaddrinfo cannot
    /// be cancelled, so it runs on a Dispatch thread and is abandoned at the timeout; the proxy process
    /// exits soon after anyway.
    static func resolve(_ name: String, timeout: Duration) throws(Failure) -> [IPAddress] {
        let absolute = name.hasSuffix(".") ? name : name + "."
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.result.withLock { $0 = lookUp(absolute) }
            done.signal()
        }
        let milliseconds = Int(Socket.milliseconds(timeout))
        guard done.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else { throw .timedOut }
        guard let result = box.result.withLock({ $0 }) else { throw .timedOut }
        return try result.get()
    }

    private final class ResultBox: Sendable {
        let result = Mutex<Result<[IPAddress], Failure>?>(nil)
    }

    private static func lookUp(_ name: String) -> Result<[IPAddress], Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        // AI_ADDRCONFIG: no IPv6 answers on a host without IPv6, so no connect attempts doomed to fail.
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &list)
        guard status == 0 else { return .failure(.notFound(String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var entry = list
        while let current = entry {
            if let address = address(of: current.pointee.ai_addr), !addresses.contains(address) {
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(.notFound("no addresses")) : .success(addresses)
    }

    /// The IP address in a sockaddr, nil for other families.
    static func address(of sockaddrPointer: UnsafePointer<sockaddr>?) -> IPAddress? {
        guard let sockaddrPointer else { return nil }
        switch Int32(sockaddrPointer.pointee.sa_family) {
        case AF_INET:
            return sockaddrPointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPAddress(in4: $0.pointee.sin_addr) }
        case AF_INET6:
            return sockaddrPointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { IPAddress(in6: $0.pointee.sin6_addr) }
        default:
            return nil
        }
    }

    /// Every address configured on the host's interfaces (loopback included), for
    /// ``AddressPolicy/localAddresses``; nil if they cannot be listed (the proxy then refuses: fail closed).
    static func localAddresses() -> Set<IPAddress>? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var addresses: Set<IPAddress> = []
        var entry = list
        while let current = entry {
            if let address = address(of: current.pointee.ifa_addr) { addresses.insert(address) }
            entry = current.pointee.ifa_next
        }
        return addresses
    }
}
