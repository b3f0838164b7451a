import Glibc

/// Write end of the SIGCHLD self-pipe; set once before the handler is installed, read only by the handler.
nonisolated(unsafe) private var sigchldPipeWrite: Int32 = -1

/// How a reaped child ended, with the resources it (and the descendants it waited for) used.
struct ExitRecord {
    var status: Int32
    var usage: rusage

    var exitCode: Int32? { (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil }
    var signal: Int32? { (status & 0x7f) != 0 && (status & 0x7f) != 0x7f ? status & 0x7f : nil }
    var cpuMilliseconds: Int {
        let user = Int(usage.ru_utime.tv_sec) * 1000 + Int(usage.ru_utime.tv_usec) / 1000
        let system = Int(usage.ru_stime.tv_sec) * 1000 + Int(usage.ru_stime.tv_usec) / 1000
        return user + system
    }
}

/// Reaps every child: as PID 1 the agent inherits every orphan of every job, and an unreaped zombie
/// would keep its cgroup populated. A SIGCHLD handler writes to a self-pipe so a poll() loop wakes
/// up the moment a child exits, without a race between checking and sleeping.
final class ChildReaper {
    /// Readable whenever a child may have exited; include it in poll() sets and call ``reap()``.
    let wakeFD: Int32
    /// Arrays, not a Set and a Dictionary: they hold a handful of children at most, and the hashing
    /// code a Set needs would be one more path for TCG to translate in a VM just restored, every job.
    private var watched: [pid_t] = []
    private var exited: [(pid: pid_t, record: ExitRecord)] = []

    init() throws {
        let (readEnd, writeEnd) = try Posix.makePipe()
        Posix.setNonBlocking(readEnd)
        Posix.setNonBlocking(writeEnd)
        wakeFD = readEnd
        sigchldPipeWrite = writeEnd
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno
            var byte: UInt8 = 1
            _ = write(sigchldPipeWrite, &byte, 1)
            errno = saved
        }
        action.sa_flags = SA_RESTART | SA_NOCLDSTOP
        sigemptyset(&action.sa_mask)
        guard sigaction(SIGCHLD, &action, nil) == 0 else { throw AgentError.system("sigaction SIGCHLD") }
    }

    /// Keep the exit record of this child for ``takeExit(of:)``; other children are reaped and forgotten.
    func watch(_ pid: pid_t) { if !watched.contains(pid) { watched.append(pid) } }

    /// Drains the wake pipe and reaps every exited child.
    func reap() {
        var sink = [UInt8](repeating: 0, count: 64)
        while sink.withUnsafeMutableBytes({ read(wakeFD, $0.baseAddress!, $0.count) }) > 0 {}
        while true {
            var status: Int32 = 0
            var usage = rusage()
            let pid = wait4(-1, &status, WNOHANG, &usage)
            if pid < 0 && errno == EINTR { continue }
            if pid <= 0 { return }
            if let index = watched.firstIndex(of: pid) {
                watched.remove(at: index)
                exited.append((pid, ExitRecord(status: status, usage: usage)))
            }
        }
    }

    func takeExit(of pid: pid_t) -> ExitRecord? {
        guard let index = exited.firstIndex(where: { $0.pid == pid }) else { return nil }
        return exited.remove(at: index).record
    }
}
