import Glibc

/// How a tunnel ended.
public enum TunnelEnd: Equatable, Sendable {
    /// Both sides reached end of stream and everything was delivered.
    case closed
    /// No byte moved for the idle timeout.
    case idleTimeout
    /// The byte cap was reached; what had been read was delivered, then both sides were closed.
    case byteCapReached
    /// A read or write failed (a peer reset the connection or went away while data was pending).
    case failed(String)
}

/// Copies bytes both ways between the client and the upstream server until both directions are done.
///
/// Half-close is passed on: when one side ends its stream, the other side's socket gets
/// shutdown(SHUT_WR) once the bytes before the end are delivered, and the opposite direction keeps
/// flowing (clients that send a request, half-close and then read the answer keep working).
/// Each direction reads only when its buffer is empty, so a slow reader slows the writer down
/// instead of growing a buffer.
struct Relay {
    let client: CInt
    let upstream: CInt
    let idleTimeout: Duration
    let maxBytes: Int

    struct Result {
        var end: TunnelEnd
        /// Bytes read from the client (including those sent with the request head) and from upstream.
        var bytesUp: Int
        var bytesDown: Int
    }

    /// Runs the tunnel. `pendingUp` are bytes the client sent right after the request head.
    func run(pendingUp: [UInt8]) -> Result {
        let up = Direction(from: client, to: upstream, name: "client")
        let down = Direction(from: upstream, to: client, name: "upstream")
        defer {
            up.deallocate()
            down.deallocate()
        }
        up.preload(Array(pendingUp.prefix(maxBytes)))
        var idle = Deadline(after: idleTimeout)

        while true {
            for direction in [up, down] where direction.finishedReading && direction.pending == 0 && !direction.shutDown {
                shutdown(direction.to, Int32(SHUT_WR))
                direction.shutDown = true
            }
            let total = up.transferred + down.transferred
            let capReached = total >= maxBytes
            if up.shutDown && down.shutDown { return result(.closed, up, down) }
            if capReached && up.pending == 0 && down.pending == 0 { return result(.byteCapReached, up, down) }

            let readBudget = maxBytes - total
            var fds = [
                pollfd(fd: client, events: events(reading: up, writing: down, capReached), revents: 0),
                pollfd(fd: upstream, events: events(reading: down, writing: up, capReached), revents: 0),
            ]
            // An fd with nothing to wait for is left out: poll would report its HUP/ERR at once, forever.
            // Except the client once it has sent everything: its HUP then means the guest side is gone
            // altogether (QEMU exited, the VM was destroyed), and the tunnel must not wait for upstream.
            for index in fds.indices where fds[index].events == 0 && !(index == 0 && up.finishedReading) { fds[index].fd = -1 }
            let ready = poll(&fds, 2, idle.pollMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return result(.failed("poll: \(Connector.errorText(errno))"), up, down)
            }
            if ready == 0 { return result(.idleTimeout, up, down) }

            var progressed = false
            let writable = Int16(POLLOUT | POLLHUP | POLLERR)
            let readable = Int16(POLLIN | POLLHUP | POLLERR)
            for (direction, toEvents, fromEvents) in [(up, fds[1].revents, fds[0].revents), (down, fds[0].revents, fds[1].revents)] {
                if direction.pending > 0 && toEvents & writable != 0 {
                    switch direction.flush() {
                    case .progressed: progressed = true
                    case .blocked: break
                    case .failed(let message): return result(.failed(message), up, down)
                    }
                }
                if direction.canRead && !capReached && fromEvents & readable != 0 {
                    switch direction.fill(limit: readBudget) {
                    case .progressed: progressed = true
                    case .blocked: break
                    case .failed(let message): return result(.failed(message), up, down)
                    }
                }
            }
            if progressed { idle = Deadline(after: idleTimeout) }
            if up.finishedReading && fds[0].fd >= 0 && fds[0].revents & Int16(POLLHUP | POLLERR) != 0 {
                return result(.closed, up, down)
            }
        }
    }

    private func events(reading: Direction, writing: Direction, _ capReached: Bool) -> Int16 {
        var events: Int16 = 0
        if reading.canRead && !capReached { events |= Int16(POLLIN) }
        if writing.pending > 0 { events |= Int16(POLLOUT) }
        return events
    }

    private func result(_ end: TunnelEnd, _ up: Direction, _ down: Direction) -> Result {
        Result(end: end, bytesUp: up.transferred, bytesDown: down.transferred)
    }
}

/// One direction of the tunnel: reads from `from` into a buffer, writes the buffer to `to`.
private final class Direction {
    static let bufferSize = 64 * 1024

    let from: CInt
    let to: CInt
    let name: String
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Direction.bufferSize, alignment: 16)
    var start = 0
    var end = 0
    /// Bytes read from `from` so far.
    var transferred = 0
    /// `from` reached end of stream.
    var finishedReading = false
    /// `to` got shutdown(SHUT_WR).
    var shutDown = false

    init(from: CInt, to: CInt, name: String) {
        self.from = from
        self.to = to
        self.name = name
    }

    var pending: Int { end - start }
    var canRead: Bool { !finishedReading && pending == 0 }

    func deallocate() { buffer.deallocate() }

    enum Step {
        case progressed
        case blocked
        case failed(String)
    }

    func preload(_ bytes: [UInt8]) {
        // The request head is at most 8 KiB, so what followed it always fits.
        let count = min(bytes.count, buffer.count)
        UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]).copyBytes(from: bytes.prefix(count))
        end = count
        transferred = count
    }

    func fill(limit: Int) -> Step {
        start = 0
        end = 0
        let room = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, limit)])
        switch Socket.readSome(from, into: room) {
        case .bytes(let count):
            end = count
            transferred += count
            return .progressed
        case .endOfFile:
            finishedReading = true
            return .progressed
        case .wouldBlock:
            return .blocked
        case .failed(let code):
            return .failed("reading from \(name): \(Connector.errorText(code))")
        }
    }

    func flush() -> Step {
        let written = Socket.writeSome(to, UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
        if written >= 0 {
            start += written
            return .progressed
        }
        if errno == EAGAIN || errno == EWOULDBLOCK { return .blocked }
        return .failed("writing \(name) bytes: \(Connector.errorText(errno))")
    }
}
