import Glibc

/// Opens the upstream TCP connection.
enum Connector {
    struct Failure: Error {
        var timedOut: Bool
        /// What went wrong with the last address tried, e.g. `93.184.216.34: Connection refused`.
        var message: String
    }

    /// Connects to the first of `addresses` that accepts, in order, within `timeout` for all of them.
    /// Each attempt gets an equal share of what is left, but at least 3 s (or all that is left), so one
    /// unanswering address cannot starve the rest and one slow-but-good one still gets a fair chance.
    static func connect(to addresses: [IPAddress], port: UInt16, timeout: Duration) throws(Failure) -> (CInt, IPAddress) {
        let deadline = Deadline(after: timeout)
        var lastFailure = Failure(timedOut: false, message: "no address to connect to")
        for (index, address) in addresses.enumerated() {
            let left = deadline.instant - ContinuousClock.now
            guard left > .zero else { throw Failure(timedOut: true, message: lastFailure.message) }
            let share = left / (addresses.count - index)
            let attempt = Deadline(after: min(left, max(share, .seconds(3))))
            do {
                return (try connectOne(address, port: port, until: attempt), address)
            } catch {
                lastFailure = error
            }
        }
        throw lastFailure
    }

    private static func connectOne(_ address: IPAddress, port: UInt16, until deadline: Deadline) throws(Failure) -> CInt {
        let family = address.bytes.count == 4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(timedOut: false, message: "socket: \(errorText(errno))") }
        var status = withSocketAddress(address, port: port) { Glibc.connect(fd, $0, $1) }
        if status != 0 && (errno == EINPROGRESS || errno == EINTR) {
            guard Socket.wait(fd, for: Int16(POLLOUT), until: deadline) else {
                close(fd)
                throw Failure(timedOut: true, message: "\(address): connect timed out")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            status = error == 0 ? 0 : -1
            errno = error
        }
        guard status == 0 else {
            let message = "\(address): \(errorText(errno))"
            close(fd)
            throw Failure(timedOut: false, message: message)
        }
        return fd
    }

    /// Calls `body` with a sockaddr_in or sockaddr_in6 for `address`:`port`.
    static func withSocketAddress<T>(_ address: IPAddress, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let bytes = address.bytes
        if bytes.count == 4 {
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var storage = sockaddr_in6()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &storage.sin6_addr) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}
