import AgentProtocol
import Glibc

/// What an agent restored from a snapshot does before its first job (see ``AgentProtocol/AgentResume``).
enum Resume {
    // From linux/random.h, which Swift's Glibc module does not carry.
    /// `_IOW('R', 0x03, int[2])`: add bytes to the input pool and credit them as entropy.
    private static let addEntropy: UInt = 0x4008_5203
    /// `_IO('R', 0x07)`: reseed the CRNG from the input pool now, not at its next scheduled reseed.
    private static let reseedCRNG: UInt = 0x5207

    /// Checks `resume`, then reseeds and sets the clock when `system` is true: only as the guest's init.
    /// An agent serving on the host (`--listen-unix`, for tests) must not touch the host's clock or pool.
    static func apply(_ resume: AgentResume, system: Bool) throws(AgentError) {
        let entropy = [UInt8](resume.entropy)
        guard (AgentResume.minimumEntropyBytes...AgentResume.maximumEntropyBytes).contains(entropy.count) else {
            throw AgentError(
                .invalidRequest,
                "resume entropy must be \(AgentResume.minimumEntropyBytes)-\(AgentResume.maximumEntropyBytes) bytes, not \(entropy.count)")
        }
        guard resume.unixTimeNanoseconds > 0 else { throw AgentError(.invalidRequest, "resume time must be positive") }
        guard system else { return }
        try reseed(with: entropy)
        try setClock(unixNanoseconds: resume.unixTimeNanoseconds)
    }

    /// Without this every VM restored from one snapshot would read the same bytes from /dev/urandom.
    private static func reseed(with entropy: [UInt8]) throws(AgentError) {
        let fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.system("open /dev/urandom") }
        defer { close(fd) }
        // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
        let words = (entropy.count + 3) / 4
        var info = [Int32](repeating: 0, count: 2 + words)
        info[0] = Int32(entropy.count * 8)
        info[1] = Int32(entropy.count)
        info.withUnsafeMutableBytes { raw in
            for (index, byte) in entropy.enumerated() { raw[8 + index] = byte }
        }
        let added = info.withUnsafeMutableBytes { ioctl(fd, addEntropy, $0.baseAddress!) }
        guard added == 0 else { throw AgentError.system("ioctl RNDADDENTROPY") }
        guard ioctl(fd, reseedCRNG) == 0 else { throw AgentError.system("ioctl RNDRESEEDCRNG") }
    }

    /// The snapshot's clock stopped when the snapshot was taken; jobs must see the host's time.
    private static func setClock(unixNanoseconds: Int64) throws(AgentError) {
        var now = timespec(tv_sec: Int(unixNanoseconds / 1_000_000_000), tv_nsec: Int(unixNanoseconds % 1_000_000_000))
        guard clock_settime(CLOCK_REALTIME, &now) == 0 else { throw AgentError.system("clock_settime") }
    }
}
