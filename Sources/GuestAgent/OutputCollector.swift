import Glibc

/// Reads one of a job's output pipes, keeping at most `limit` bytes and counting the rest as overflow.
struct OutputCollector {
    let limit: Int
    private(set) var fd: Int32
    private(set) var bytes: [UInt8] = []
    /// Bytes arrived beyond the limit (and were discarded).
    private(set) var truncated = false

    init(fd: Int32, limit: Int) {
        self.fd = fd
        self.limit = limit
        Posix.setNonBlocking(fd)
    }

    var isOpen: Bool { fd >= 0 }

    /// Reads everything available now; closes the pipe at end of file.
    mutating func drain() {
        guard fd >= 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count > 0 {
                let room = max(0, limit - bytes.count)
                bytes.append(contentsOf: chunk[0..<min(count, room)])
                if count > room { truncated = true }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            close()
            return
        }
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
