import Glibc

/// How jobs are isolated. In the guest (agent is PID 1, root, cgroup v2 delegated by codebench-init)
/// every step runs in its own cgroup as uid/gid 1000 with no supplementary groups and no_new_privs.
/// Anywhere else (the host test mode) jobs run as the agent's own user without limits other than the
/// wall time and output bounds, and every result says so.
///
/// Dropping to uid 1000 without an extra exec (setpriv cost about as much as the job's own exec under
/// TCG): for the duration of a spawn the agent sets only its *real* uid/gid to 1000 (effective and saved
/// stay 0, so it keeps its capabilities), and posix_spawn's POSIX_SPAWN_RESETIDS makes the child set its
/// effective IDs to the real ones before exec. execve then copies the effective IDs into the saved ones
/// and, with no ID equal to 0, computes empty capability sets. Supplementary groups (none) and
/// no_new_privs are set once on the agent and inherited by every child.
struct Sandbox {
    /// The unprivileged user every job runs as in the guest (`runner` in the image).
    static let runnerID: UInt32 = 1000

    /// Nil when confined; otherwise why not, for result messages.
    let unconfinedReason: String?

    var confined: Bool { unconfinedReason == nil }

    static func detect() -> Sandbox {
        if getpid() != 1 {
            return Sandbox(unconfinedReason: "host test mode: no cgroup limits, no user switch")
        }
        if getuid() != 0 { return Sandbox(unconfinedReason: "agent is not root: no cgroup limits, no user switch") }
        if !CGroup.available() {
            return Sandbox(unconfinedReason: "cgroup v2 with memory and pids controllers is not available")
        }
        return Sandbox(unconfinedReason: nil)
    }

    /// Once, at start-up: what every job inherits from the agent. Throws if the guest cannot be confined.
    func prepareAgent() throws {
        guard confined else { return }
        guard setgroups(0, nil) == 0 else { throw AgentError.system("setgroups([])") }
        // prctl is variadic, so Swift cannot import it; on x86-64 a fixed-argument call is ABI-compatible.
        typealias PrctlFunction = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else {
            throw AgentError(.system, "prctl not found")
        }
        let setNoNewPrivileges: Int32 = 38  // PR_SET_NO_NEW_PRIVS
        guard unsafeBitCast(symbol, to: PrctlFunction.self)(setNoNewPrivileges, 1, 0, 0, 0) == 0 else {
            throw AgentError.system("prctl(PR_SET_NO_NEW_PRIVS)")
        }
    }

    /// Runs `spawn` with the agent's real IDs set to the runner's (see the type's comment); the spawn
    /// must use POSIX_SPAWN_RESETIDS. Restores root before returning; a failure to restore is fatal.
    func asRunner<T>(_ spawn: () throws -> T) throws -> T {
        guard confined else { return try spawn() }
        let unchanged = UInt32.max  // (uid_t)-1: leave the effective ID as it is
        guard setregid(Sandbox.runnerID, unchanged) == 0 else { throw AgentError.system("setregid(1000, -1)") }
        guard setreuid(Sandbox.runnerID, unchanged) == 0 else {
            let error = AgentError.system("setreuid(1000, -1)")
            restoreRoot()
            throw error
        }
        defer { restoreRoot() }
        return try spawn()
    }

    private func restoreRoot() {
        if setreuid(0, UInt32.max) != 0 || setregid(0, UInt32.max) != 0 || getuid() != 0 || getgid() != 0 {
            // The agent could no longer set up jobs safely: end the VM (the host sees the channel close).
            Log.fatal("cannot restore root IDs after a spawn: \(AgentError.system("setreuid/setregid(0, -1)"))")
            Posix.rebootNow()
            fatalError("reboot failed")
        }
    }

    /// Shared writable places a job can leave files in (they would outlive it and count against guest RAM).
    static let sharedScratchDirectories = ["/tmp", "/dev/shm"]

    /// Removes what the runner user left in the shared scratch directories, except `keeping`: the work
    /// directories still in use (judge mode's compiled program and checker live under /tmp between cases,
    /// owned by the runner).
    func removeJobLeftovers(keeping: [String] = []) {
        guard confined else { return }
        for directory in Sandbox.sharedScratchDirectories {
            for name in Posix.listDirectory(directory) {
                var info = stat()
                let path = "\(directory)/\(name)"
                if keeping.contains(path) { continue }
                if lstat(path, &info) == 0 && info.st_uid == Sandbox.runnerID { WorkDirectory.removeTree(path) }
            }
        }
    }
}
