import Glibc

/// Thin, throwing wrappers over the few system calls the agent needs. Everything here retries on EINTR
/// because SIGCHLD interrupts the agent often.
enum Posix {
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func monotonicMilliseconds() -> Int { Int(monotonicNanoseconds() / 1_000_000) }

    /// How ``waitUntilSleeping(_:deadline:)`` ended.
    enum SleepWait { case sleeping, gone, timedOut }

    /// Polls /proc until process `pid` sleeps (state `S`: blocked, here in the read or recvmsg it waits
    /// in), is gone or a zombie, or the monotonic clock reaches `deadline` (milliseconds).
    @discardableResult
    static func waitUntilSleeping(_ pid: pid_t, deadline: Int) -> SleepWait {
        while monotonicMilliseconds() < deadline {
            let state = processState(pid)
            if state == "S" { return .sleeping }
            if state == nil || state == "Z" { return .gone }
            sleep(milliseconds: 1)
        }
        return .timedOut
    }

    /// The state letter of /proc/<pid>/stat (after the parenthesised command name); nil when unreadable.
    static func processState(_ pid: pid_t) -> Character? {
        guard let stat = try? readFile("/proc/\(pid)/stat"), let end = stat.lastIndex(of: UInt8(ascii: ")")), end + 2 < stat.count else {
            return nil
        }
        return Character(UnicodeScalar(stat[end + 2]))
    }

    static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw AgentError.system("write")
            }
            offset += written
        }
    }

    /// A file in /tmp with no name: a read-write descriptor for the agent and a read-only one for a
    /// job (its stdin, a prepared shell's command). 0444: a program that opens `/dev/stdin` (a link
    /// into /proc/self/fd) reopens it as the runner; nobody can write it, and without a name nobody
    /// else can reach it.
    static func unlinkedFile(_ label: String) throws -> (writer: Int32, reader: Int32) {
        let path = "/tmp/codebench-agent-\(getpid())-\(label)"
        unlink(path)
        let writer = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard writer >= 0 else { throw AgentError.system("create \(path)") }
        fchmod(writer, 0o444)
        let reader = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        let openError = errno
        unlink(path)
        guard reader >= 0 else {
            close(writer)
            throw AgentError.system("open \(path)", errno: openError)
        }
        return (writer, reader)
    }

    /// Creates (or truncates) a file and writes it whole.
    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw AgentError.system("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, bytes)
    }

    /// Writes to an existing file without creating it: cgroup and proc control files.
    static func writeControl(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.system("open \(path)") }
        defer { close(fd) }
        do {
            try writeAll(fd, Array(text.utf8))
        } catch let error as AgentError {
            throw AgentError(error.code, "\(path) <- \(text): \(error.message)")
        }
    }

    static func readFile(_ path: String, limit: Int = 1 << 20) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.system("open \(path)") }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AgentError.system("read \(path)")
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// The file's text, or nil when it cannot be read (optional kernel interfaces).
    static func readText(_ path: String) -> String? {
        guard let bytes = try? readFile(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// A pipe whose both ends are close-on-exec; posix_spawn's dup2 clears the flag on the child's copy.
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw AgentError.system("pipe") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Names in a directory, without "." and "..".
    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            var raw = entry.pointee.d_name
            let capacity = MemoryLayout.size(ofValue: raw)
            let name = withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: CChar.self, capacity: capacity) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// "Linux 6.1.0 x86_64".
    static func kernelDescription() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        func field<T>(_ value: inout T) -> String {
            withUnsafePointer(to: &value) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout<T>.size) { String(cString: $0) }
            }
        }
        return "\(field(&names.sysname)) \(field(&names.release)) \(field(&names.machine))"
    }

    /// reboot(2) is not exported by Swift's Glibc module (it sits behind a header the module map omits),
    /// so it is looked up at run time; glibc is always linked dynamically.
    static func rebootNow() {
        sync()
        typealias RebootFunction = @convention(c) (Int32) -> Int32
        let autoboot: Int32 = 0x0123_4567  // RB_AUTOBOOT
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "reboot") {
            _ = unsafeBitCast(symbol, to: RebootFunction.self)(autoboot)
        }
    }
}
