import DescriptorPassing
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The start of a QMP conversation that hands QEMU a file descriptor (`getfd` with the descriptor
/// in an `SCM_RIGHTS` message), done with plain blocking socket calls because SwiftNIO's stream
/// channels cannot attach descriptors. The connected socket then goes on in NIO (``QMPClient``).
///
/// Why a descriptor: a jailed QEMU cannot open files outside its root, nor spawn, so its snapshot
/// is written to a file the worker opens; and QEMU 7.2's outgoing `migrate fd:` takes only a
/// descriptor name registered with `getfd`, never a number it inherited.
struct QMPDescriptorHandOver {
    /// The connected socket, greeting read and capabilities negotiated, `fd` registered as `name`.
    var socket: CInt
    /// Bytes read past the last reply (the start of an event), for the line reader.
    var leftover: [UInt8]

    /// Bounds every blocking read and write of the prologue.
    static let ioTimeoutSeconds = 5

    static func connect(socketPath: String, passing fd: CInt, as name: String) throws(QMPClient.Failure) -> QMPDescriptorHandOver {
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw QMPClient.Failure(description: "cannot create a socket: \(lastError())") }
        do {
            try connectUnix(socket, socketPath)
            var timeout = timeval(tv_sec: ioTimeoutSeconds, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var reader = BlockingLines(socket: socket)
            _ = try reader.next()  // {"QMP": {"version": ...}}
            try sendAll(socket, Array(#"{"execute":"qmp_capabilities"}"#.utf8) + [10], passing: nil)
            try reader.reply(to: "qmp_capabilities")
            try sendAll(socket, Array(#"{"execute":"getfd","arguments":{"fdname":"\#(name)"}}"#.utf8) + [10], passing: fd)
            try reader.reply(to: "getfd")
            // NIO takes over: no timeouts on its non-blocking socket.
            var none = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
            return QMPDescriptorHandOver(socket: socket, leftover: reader.lines.pending)
        } catch {
            close(socket)
            throw error
        }
    }

    private static func connectUnix(_ socket: CInt, _ path: String) throws(QMPClient.Failure) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw QMPClient.Failure(description: "QMP socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw QMPClient.Failure(description: "cannot connect to QMP at \(path): \(lastError())") }
    }

    /// Writes `bytes`; the first write carries `fd` as `SCM_RIGHTS` when given.
    private static func sendAll(_ socket: CInt, _ bytes: [UInt8], passing fd: CInt?) throws(QMPClient.Failure) {
        var offset = 0
        var descriptor = fd
        while offset < bytes.count {
            let sent = DescriptorPassing.send(socket, bytes[offset...], descriptor: descriptor)
            if sent < 0 {
                if errno == EINTR { continue }
                throw QMPClient.Failure(description: "cannot write to QMP: \(lastError())")
            }
            offset += sent
            descriptor = nil
        }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }

    /// Lines from the blocking socket.
    private struct BlockingLines {
        let socket: CInt
        var lines = QMPLines()

        mutating func next() throws(QMPClient.Failure) -> String {
            while true {
                if let line = try lines.next() { return line }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 { throw QMPClient.Failure(description: "cannot read from QMP: \(lastError())") }
                guard count > 0 else { throw QMPClient.Failure(description: "QMP connection closed") }
                lines.append(chunk[0..<count])
            }
        }

        /// Skips events until the reply to `command`; an error reply throws.
        mutating func reply(to command: String) throws(QMPClient.Failure) {
            while try !QMPLines.isReply(next(), to: command) {}
        }
    }
}
