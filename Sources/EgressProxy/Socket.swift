import Glibc

/// A point on the monotonic clock that a blocking step must finish by.
struct Deadline {
    let instant: ContinuousClock.Instant

    init(after duration: Duration) { instant = .now + duration }

    var hasPassed: Bool { ContinuousClock.now >= instant }

    /// What is left, as a poll() timeout: at least 1 ms while time remains, 0 once it has passed.
    var pollMilliseconds: Int32 { Socket.milliseconds(instant - ContinuousClock.now) }
}

/// The system calls the proxy uses on its two sockets. Both are non-blocking and every wait is a
/// poll() with a deadline, so no step can hang past its timeout. EINTR is retried everywhere.
enum Socket {
    /// A duration as a poll() timeout, rounded up so a tiny remainder does not spin, capped at Int32.
    static func milliseconds(_ duration: Duration) -> Int32 {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: millis)
    }

    static func setNonBlocking(_ fd: CInt) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Waits for `events` on `fd`; false when the deadline passes first.
    static func wait(_ fd: CInt, for events: Int16, until deadline: Deadline) -> Bool {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, deadline.pollMilliseconds)
            if ready > 0 { return true }
            if ready == 0 || errno != EINTR { return ready != 0 }
        }
    }

    enum ReadResult {
        case bytes(Int)
        case endOfFile
        case wouldBlock
        case failed(Int32)
    }

    /// One read(2); never blocks on a non-blocking fd.
    static func readSome(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(errno)
            }
        }
    }

    /// One send(2) with MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE, even where SIGPIPE is not
    /// ignored, as in tests); falls back to write(2) when `fd` is not a socket. -1 with errno set on error.
    static func writeSome(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Int {
        while true {
            var count = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if count < 0 && errno == ENOTSOCK { count = write(fd, buffer.baseAddress, buffer.count) }
            if count < 0 && errno == EINTR { continue }
            return count
        }
    }

    /// Writes all of `bytes` by `deadline`; false if the peer is gone or too slow.
    @discardableResult
    static func writeAll(_ fd: CInt, _ bytes: [UInt8], until deadline: Deadline) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { writeSome(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            if written >= 0 {
                offset += written
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return false }
            } else {
                return false
            }
        }
        return true
    }

    /// Ends a refused connection politely: stop writing, then read and discard what the client is still
    /// sending for a moment. Closing with unread input makes the kernel reset the connection, and a reset
    /// can destroy the error response before the client reads it.
    static func lingeringClose(_ fd: CInt, for duration: Duration = .seconds(1), maxBytes: Int = 64 * 1024) {
        shutdown(fd, Int32(SHUT_WR))
        let deadline = Deadline(after: duration)
        var discarded = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
        defer { buffer.deallocate() }
        drain: while discarded < maxBytes {
            switch readSome(fd, into: buffer) {
            case .bytes(let count): discarded += count
            case .wouldBlock: if !wait(fd, for: Int16(POLLIN), until: deadline) { break drain }
            case .endOfFile, .failed: break drain
            }
        }
        close(fd)
    }
}
