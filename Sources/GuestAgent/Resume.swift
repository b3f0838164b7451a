import AgentProtocol
import FoundationEssentials
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
        let count = resume.entropy.count
        guard count >= AgentResume.minimumEntropyBytes && count <= AgentResume.maximumEntropyBytes else {
            throw AgentError(
                .invalidRequest,
                "resume entropy must be \(AgentResume.minimumEntropyBytes)-\(AgentResume.maximumEntropyBytes) bytes, not \(count)")
        }
        guard resume.unixTimeNanoseconds > 0 else { throw AgentError(.invalidRequest, "resume time must be positive") }
        PhaseTrace.mark("checked")
        guard system else { return }
        try reseed(with: resume.entropy)
        try setClock(unixNanoseconds: resume.unixTimeNanoseconds)
        PhaseTrace.mark("clock set")
    }

    /// Without this every VM restored from one snapshot would read the same bytes from /dev/urandom.
    private static func reseed(with entropy: Data) throws(AgentError) {
        let fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.system("open /dev/urandom") }
        defer { close(fd) }
        // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
        let words = (entropy.count + 3) / 4
        var info = [Int32](repeating: 0, count: 2 + words)
        info[0] = Int32(entropy.count * 8)
        info[1] = Int32(entropy.count)
        // Straight from the Data's bytes: no Array of them first, one generic conversion less to
        // translate in a VM just restored, where this runs before anything else.
        info.withUnsafeMutableBytes { raw in
            entropy.withUnsafeBytes { bytes in
                guard let source = bytes.baseAddress else { return }
                (raw.baseAddress! + 8).copyMemory(from: source, byteCount: bytes.count)
            }
        }
        let added = info.withUnsafeMutableBytes { ioctl(fd, addEntropy, $0.baseAddress!) }
        guard added == 0 else { throw AgentError.system("ioctl RNDADDENTROPY") }
        PhaseTrace.mark("entropy added")
        guard ioctl(fd, reseedCRNG) == 0 else { throw AgentError.system("ioctl RNDRESEEDCRNG") }
        PhaseTrace.mark("CRNG reseeded")
    }

    /// The snapshot's clock stopped when the snapshot was taken; jobs must see the host's time.
    private static func setClock(unixNanoseconds: Int64) throws(AgentError) {
        var now = timespec(tv_sec: Int(unixNanoseconds / 1_000_000_000), tv_nsec: Int(unixNanoseconds % 1_000_000_000))
        guard clock_settime(CLOCK_REALTIME, &now) == 0 else { throw AgentError.system("clock_settime") }
    }
}
