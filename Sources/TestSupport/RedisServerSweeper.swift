import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Cleans up after test processes that were killed before they could stop their servers:
/// each server dir records its owner's PID and the server's PID; a server whose owner is gone
/// is SIGKILLed and its dir removed the next time any test starts a server.
enum RedisServerSweeper {
    static let prefix = "redis-test-"

    /// Records who owns the server in `directory`.
    static func recordOwner(in directory: String) {
        try? String(getpid()).write(toFile: directory + "/owner.pid", atomically: true, encoding: .utf8)
    }

    /// Kills orphaned servers and removes their dirs.
    static func sweep() {
        let temporary = NSTemporaryDirectory()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: temporary) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            let directory = (temporary as NSString).appendingPathComponent(entry)
            guard let owner = readPID(directory + "/owner.pid"), owner != getpid(), !isAlive(owner) else { continue }
            if let server = readPID(directory + "/redis.pid"), isRedisServer(server) {
                kill(server, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static func readPID(_ path: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Guards against PID reuse: only a process that is still a redis-server is killed.
    private static func isRedisServer(_ pid: pid_t) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"))?.hasSuffix("redis-server") ?? false
    }
}
