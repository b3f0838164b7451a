#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A process named by pid and start time (field 22 of `/proc/<pid>/stat`), so that a recorded pid
/// that the kernel has since reused for another process is not mistaken for the original one.
public struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    public var pid: pid_t
    public var startTime: UInt64

    public init(pid: pid_t, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The identity of a running process, nil when it does not exist (or is unreadable).
    public static func of(pid: pid_t) -> ProcessIdentity? {
        ProcessStat.of(pid: pid).map { ProcessIdentity(pid: pid, startTime: $0.startTime) }
    }

    /// This process.
    public static var current: ProcessIdentity {
        of(pid: getpid()) ?? ProcessIdentity(pid: getpid(), startTime: 0)
    }

    /// True when a process with this pid and start time still exists (zombies included).
    public var isAlive: Bool { Self.of(pid: pid) == self }

    /// `"<pid> <starttime>"`, the form written to files.
    public var description: String { "\(pid) \(startTime)" }

    /// Parses the form written by ``description``.
    public init?(parsing text: String) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let pid = pid_t(parts[0]), let start = UInt64(parts[1]) else { return nil }
        self.init(pid: pid, startTime: start)
    }
}

/// The fields of `/proc/<pid>/stat` that the drivers read, parsed in one place.
package struct ProcessStat: Sendable, Hashable {
    /// Field 2, the command name (at most 15 bytes), without its parentheses.
    package var name: String
    /// Field 3: `R`, `S`, `D`, `Z` (a zombie), …
    package var state: Character
    /// Field 4.
    package var parent: pid_t
    /// Field 22, in clock ticks since boot.
    package var startTime: UInt64
    /// Fields 14 and 15, user and system time, in clock ticks.
    package var cpuTicks: UInt64

    /// The process's stat, nil when it does not exist (or is unreadable).
    package static func of(pid: pid_t) -> ProcessStat? {
        guard pid > 0, let stat = readSmallFile("/proc/\(pid)/stat") else { return nil }
        // The name is parenthesised and may contain spaces and parentheses: fields follow the last ')'.
        guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"), open < close else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15, starttime field 22.
        guard fields.count > 19, let state = fields[0].first, let parent = pid_t(fields[1]), let start = UInt64(fields[19]),
            let user = UInt64(fields[11]), let system = UInt64(fields[12])
        else { return nil }
        return ProcessStat(
            name: String(stat[stat.index(after: open)..<close]), state: state, parent: parent, startTime: start, cpuTicks: user + system)
    }
}

/// Reads a small text file (at most `limit` bytes, 64 KiB unless told) with plain POSIX calls; nil
/// when it cannot be read.
package func readSmallFile(_ path: String, limit: Int = 64 << 10) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes a small text file atomically enough for our use (create, write, close).
package func writeSmallFile(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw VMError(.invalidConfiguration, "cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw VMError(.invalidConfiguration, "cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += n
    }
}
