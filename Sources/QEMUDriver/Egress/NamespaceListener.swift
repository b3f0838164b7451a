import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listening socket created inside a jailed QEMU's own network namespace.
///
/// The jailed QEMU's user networking (slirp) turns the guest's connections to its host address
/// (10.0.2.100) into connections to 127.0.0.1 of QEMU's namespace, which holds nothing else: this
/// socket is the guest's one way out. A socket stays in the namespace it was created in, so the
/// egress proxy can accept on it from the host's namespace.
enum NamespaceListener {
    /// Creates the listener in the network namespace of `pid` (the jail's launcher, which unshared it), with that
    /// namespace's loopback brought up. Fails closed: never binds in the worker's own namespace.
    static func open(inNetworkNamespaceOf pid: pid_t, port: UInt16) async throws -> CInt {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CInt, any Error>) in
            do {
                // setns changes only the calling thread's namespace: a thread of our own, which ends
                // right after, so no other work ever runs in the VM's namespace.
                try startDetachedThread {
                    continuation.resume(with: Result { try openOnThisThread(pid: pid, port: port) })
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    private static func openOnThisThread(pid: pid_t, port: UInt16) throws -> CInt {
        let path = "/proc/\(pid)/ns/net"
        var theirs = stat()
        var ours = stat()
        guard stat(path, &theirs) == 0, stat("/proc/thread-self/ns/net", &ours) == 0 else {
            throw failure("cannot read the network namespace of QEMU's jail (\(path))")
        }
        guard theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev else {
            throw VMError(.bootFailed, "QEMU's jail shares the worker's network namespace; no egress listener is opened there")
        }
        let namespace = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard namespace >= 0 else { throw failure("cannot open \(path)") }
        defer { close(namespace) }
        guard let setns = Self.setns, setns(namespace, Self.cloneNewNet) == 0 else { throw failure("cannot enter QEMU's network namespace") }
        try bringLoopbackUp()
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw failure("cannot create the egress listener") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 64) == 0 else {
            let error = failure("cannot listen on 127.0.0.1:\(port) in QEMU's network namespace")
            close(socket)
            throw error
        }
        return socket
    }

    /// A new network namespace's loopback is down, without 127.0.0.1.
    private static func bringLoopbackUp() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw failure("cannot create a socket in QEMU's network namespace") }
        defer { close(socket) }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { name in
            name.copyBytes(from: Array("lo".utf8) + [0])
        }
        guard ioctl(socket, UInt(SIOCGIFFLAGS), &request) == 0 else { throw failure("cannot read the loopback's flags") }
        request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
        guard ioctl(socket, UInt(SIOCSIFFLAGS), &request) == 0 else { throw failure("cannot bring the loopback up") }
    }

    /// setns(2), which Swift's Glibc module does not import (it is behind _GNU_SOURCE).
    private static let setns: (@convention(c) (CInt, CInt) -> CInt)? = {
        guard let symbol = dlsym(nil, "setns") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (CInt, CInt) -> CInt).self)
    }()
    /// CLONE_NEWNET from <sched.h>, for the same reason.
    private static let cloneNewNet: CInt = 0x4000_0000

    private static func failure(_ what: String) -> VMError {
        VMError(.bootFailed, "\(what): \(String(cString: strerror(errno)))")
    }
}
