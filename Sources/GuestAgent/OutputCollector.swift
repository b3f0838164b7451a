import Glibc

/// Reads one of a job's output pipes, keeping at most `limit` bytes and counting the rest as overflow.
struct OutputCollector {
    /// Most bytes one ``drain()`` reads. A pipe holds 64 KiB, so one pass can still empty it.
    static let maximumBytesPerPass = 65536
    /// Most read(2) calls one ``drain()`` makes. The byte budget alone does not bound a pass: a writer
    /// of one byte per write(2) makes each read return a few bytes, and its pass would last 65536 reads.
    static let maximumReadsPerPass = 16

    let limit: Int
    private(set) var fd: Int32
    private(set) var bytes: [UInt8] = []
    /// Bytes arrived beyond the limit (and were discarded).
    private(set) var truncated = false
    /// How many of ``bytes`` went to the host as output chunks already (streaming, revision 3).
    private(set) var sent = 0
    /// Reused by every pass: the step loop calls ``drain()`` once per wake-up, often thousands of times.
    private var chunk = [UInt8](repeating: 0, count: OutputCollector.maximumBytesPerPass)

    init(fd: Int32, limit: Int) {
        self.fd = fd
        self.limit = limit
        Posix.setNonBlocking(fd)
    }

    var isOpen: Bool { fd >= 0 }

    /// Reads what is available now, but only one bounded pass of it: the caller must get back to its
    /// deadline and output-limit checks while a program writes faster than the agent reads (issue 11:
    /// with a drain-until-empty loop, `yes` ran 9 to 25 s under TCG against a 1 MiB limit and 20 s).
    /// A pass ends after ``maximumBytesPerPass`` bytes, ``maximumReadsPerPass`` reads, an empty pipe
    /// (EAGAIN), or the read that first goes past the limit, so the job can be killed at once. Closes
    /// the pipe at end of file.
    mutating func drain() {
        guard fd >= 0 else { return }
        var budget = OutputCollector.maximumBytesPerPass
        var reads = 0
        while reads < OutputCollector.maximumReadsPerPass && budget > 0 {
            reads += 1
            let wanted = budget
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, wanted) }
            if count > 0 {
                budget -= count
                let room = max(0, limit - bytes.count)
                bytes.append(contentsOf: chunk[0..<min(count, room)])
                if count > room {
                    let firstOverflow = !truncated
                    truncated = true
                    // The step loop kills the job on overflow: hand it the news now, not a pass later.
                    if firstOverflow { return }
                }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            close()
            return
        }
    }

    /// Kept bytes not yet sent as output chunks, at most `maximum` of them; ``markSent(_:)`` after sending.
    func unsent(maximum: Int) -> (offset: Int, bytes: ArraySlice<UInt8>) {
        (sent, bytes[sent..<min(bytes.count, sent + maximum)])
    }

    var hasUnsent: Bool { sent < bytes.count }

    mutating func markSent(_ count: Int) { sent = min(bytes.count, sent + count) }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
