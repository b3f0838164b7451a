import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `codebench-worker run` process (the binary built next to this test bundle), for tests where a
/// worker must die for real: SIGKILL, SIGTERM. Its log goes to a temp file, shown on failure.
final class WorkerProcess: Sendable {
    let pid: Int32
    let workerID: String
    let logPath: String

    /// The executable built beside the test bundle.
    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("codebench-worker")
    }

    /// Starts a worker on `redisURL`; `settings` are `--set name=value` pairs on top of test defaults
    /// (QEMU under TCG, concurrency 1, heartbeat TTL 2 s).
    init(redisURL: String, workerID: String, runtimeDirectory: String, settings: [String: String] = [:]) throws {
        var all = [
            "vmm": "qemu", "qemu-accelerator": "tcg", "concurrency": "1", "heartbeat-ttl-seconds": "2",
            "runtime-dir": runtimeDirectory,
            // Several workers run on this host at once; each gets its own free port.
            "status-address": "127.0.0.1:0",
        ]
        all.merge(settings) { $1 }
        let arguments = ["run", "--redis-url", redisURL, "--worker-id", workerID, "--log-level", "debug"]
            + all.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] }
        logPath = NSTemporaryDirectory() + "/worker-\(workerID)-\(UUID().uuidString).log"
        // posix_spawn rather than Foundation's Process: the test reaps the child itself with waitpid.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([Self.binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, Self.binary, &actions, nil, argv, environ)
        guard result == 0 else {
            throw WorkerProcessError(message: "cannot start \(Self.binary): \(String(cString: strerror(result)))")
        }
        pid = child
        self.workerID = workerID
    }

    func signal(_ signal: Int32) { Glibc.kill(pid, signal) }

    /// Waits for the process to exit; its exit status (or 128 + signal), nil on timeout.
    func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signalled = status & 0x7f
                return signalled == 0 ? (status >> 8) & 0xff : 128 + signalled
            }
            if result < 0 { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// SIGKILLs it if still running and reaps it. Safe to call twice.
    func kill() async {
        signal(SIGKILL)
        _ = await waitForExit(timeout: .seconds(10))
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func removeLog() { try? FileManager.default.removeItem(atPath: logPath) }
}

struct WorkerProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// QEMU processes (any parent) whose command line mentions `runtimeDirectory`: VMs a test left behind.
func qemuProcesses(using runtimeDirectory: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    // An unjailed QEMU names the runtime directory itself; a jailed one sees only its jail's paths,
    // and its launcher (`codebench-jail`, whose command line holds both) is what names the directory.
    let launchersAndQEMUs = entries.compactMap { name -> Int32? in
        guard let pid = Int32(name),
            let cmdline = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
            String(decoding: cmdline, as: UTF8.self).contains("qemu-system"),
            String(decoding: cmdline, as: UTF8.self).contains(runtimeDirectory)
        else { return nil }
        return pid
    }
    return launchersAndQEMUs + launchersAndQEMUs.flatMap { VMProcessCensus.children(of: $0) }
}
