import Foundation
import Glibc
import Synchronization
import EgressProxy

/// Blocking socket helpers for the test's side of a connection. Every read has a receive timeout, so a
/// proxy bug fails a test instead of hanging the run.
enum TestSocket {
    /// A connected AF_UNIX stream pair, like the one libslirp hands the proxy: (test's end, proxy's end).
    static func pair() -> (CInt, CInt) {
        var fds: [CInt] = [-1, -1]
        let status = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        precondition(status == 0, "socketpair failed: \(errno)")
        setReceiveTimeout(fds[0])
        return (fds[0], fds[1])
    }

    static func setReceiveTimeout(_ fd: CInt, seconds: Int = 20) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func send(_ fd: CInt, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TestError("send failed: errno \(errno)")
            }
            offset += count
        }
    }

    static func send(_ fd: CInt, _ text: String) throws { try send(fd, Array(text.utf8)) }

    /// Reads exactly `count` bytes; fewer only if the stream ends first.
    static func receive(_ fd: CInt, count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while result.count < count {
            let wanted = min(chunk.count, count - result.count)
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, wanted, 0) }
            if got < 0 {
                if errno == EINTR { continue }
                throw TestError("recv failed: errno \(errno)")
            }
            if got == 0 { break }
            result += chunk[0..<got]
        }
        return result
    }

    /// Reads until the peer ends the stream.
    static func receiveToEnd(_ fd: CInt) throws -> [UInt8] {
        try receive(fd, count: Int.max)
    }

    /// ``receiveToEnd(_:)`` as text: what a test compares a proxy's answer against.
    static func receiveTextToEnd(_ fd: CInt) throws -> String {
        String(decoding: try receiveToEnd(fd), as: UTF8.self)
    }

    /// Reads one response head, byte by byte so nothing after it is consumed.
    static func receiveHead(_ fd: CInt) throws -> String {
        var head: [UInt8] = []
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            let byte = try receive(fd, count: 1)
            guard let first = byte.first else { throw TestError("stream ended inside the response head: \(String(decoding: head, as: UTF8.self))") }
            head.append(first)
        }
        return String(decoding: head, as: UTF8.self)
    }

    /// A listening TCP socket on 127.0.0.1 with a free port.
    static func listener() throws -> (CInt, UInt16) {
        let (fd, port) = try bound()
        guard listen(fd, 16) == 0 else { throw TestError("listen failed: errno \(errno)") }
        return (fd, port)
    }

    /// A TCP socket bound to a free port on 127.0.0.1, not listening.
    static func bound() throws -> (CInt, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestError("bind failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Whether a connection is waiting in `listener`'s accept queue. A loopback connect() completes the
    /// handshake before it returns, so once serve() has returned, any connection it made is visible here.
    static func hasPendingConnection(_ listener: CInt) -> Bool {
        var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// serve() running on the proxy's end of a socket pair; the test talks through `fd`.
///
/// serve() starts on its own thread right away, not from a Task: the test bodies block in recv(), and
/// on a two-core machine they can occupy the whole cooperative pool, so a Task might never get to run.
struct ServedConnection {
    let fd: CInt
    private let result: ThreadResult<ConnectionReport>

    init(options: EgressOptions) {
        let (mine, proxys) = TestSocket.pair()
        fd = mine
        result = ThreadResult { serve(client: proxys, options: options) }
    }

    /// Closes the test's end and waits for serve() to return.
    func finish() async -> ConnectionReport {
        close(fd)
        return await result.value
    }
}

/// The result of `body`, run on a thread of its own that starts at once.
final class ThreadResult<T: Sendable>: Sendable {
    private enum State {
        case running(waiter: CheckedContinuation<T, Never>?)
        case done(T)
    }

    private let state = Mutex<State>(.running(waiter: nil))

    init(_ body: @escaping @Sendable () -> T) {
        Thread { [self] in
            let value = body()
            let waiter = state.withLock { state -> CheckedContinuation<T, Never>? in
                defer { state = .done(value) }
                if case .running(let waiter) = state { return waiter }
                return nil
            }
            waiter?.resume(returning: value)
        }.start()
    }

    var value: T {
        get async {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> T? in
                    if case .done(let value) = state { return value }
                    state = .running(waiter: continuation)
                    return nil
                }
                if let done { continuation.resume(returning: done) }
            }
        }
    }
}

/// Runs `body` on a thread of its own and waits for it without holding a cooperative thread.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await ThreadResult(body).value
}

/// A TCP echo server on 127.0.0.1: echoes each connection until it ends, then ends its side too.
final class EchoServer: Sendable {
    let port: UInt16
    private let listener: CInt
    private let stopped = Atomic<Bool>(false)
    private let accepted = Atomic<Int>(0)

    init() throws {
        (listener, port) = try TestSocket.listener()
        Thread { [self] in acceptLoop() }.start()
    }

    var acceptedCount: Int { accepted.load(ordering: .acquiring) }

    func stop() { stopped.store(true, ordering: .releasing) }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            accepted.add(1, ordering: .releasing)
            Thread { EchoServer.echo(connection) }.start()
        }
        close(listener)
    }

    private static func echo(_ fd: CInt) {
        TestSocket.setReceiveTimeout(fd)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0, (try? TestSocket.send(fd, Array(chunk[0..<count]))) != nil else { break }
        }
        shutdown(fd, Int32(SHUT_WR))
        close(fd)
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

extension EgressOptions {
    /// Options for reaching a test server on 127.0.0.1:`port` (the escape hatch tests need).
    static func local(port: UInt16) -> EgressOptions {
        var options = EgressOptions()
        options.allowedPorts = [port]
        options.allowedAddresses = [.v4(0x7F00_0001)]
        return options
    }
}
