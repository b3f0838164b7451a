import Glibc

/// How jobs are isolated. In the guest (agent is PID 1, root, cgroup v2 delegated by codebench-init)
/// every step runs in its own cgroup as uid/gid 1000 with no supplementary groups. Anywhere else (the
/// host test mode) jobs run as the agent's own user without limits other than the wall time and output
/// bounds, and every result says so.
struct Sandbox {
    /// The unprivileged user every job runs as in the guest (`runner` in the image).
    static let runnerID: UInt32 = 1000
    static let setpriv = "/usr/bin/setpriv"

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
        if !Posix.exists(setpriv) { return Sandbox(unconfinedReason: "\(setpriv) is missing") }
        return Sandbox(unconfinedReason: nil)
    }

    /// Wraps a command so it drops to the runner user before exec. setpriv (util-linux, in every Debian)
    /// does setgroups([]) + setresgid + setresuid (saved IDs too) in the right order; posix_spawn cannot
    /// change users. no_new_privs makes the image's setuid binaries (su, mount, ...) useless to a job.
    /// Shared writable places a job can leave files in (they would outlive it and count against guest RAM).
    static let sharedScratchDirectories = ["/tmp", "/dev/shm"]

    /// Removes what the runner user left in the shared scratch directories.
    func removeJobLeftovers() {
        guard confined else { return }
        for directory in Sandbox.sharedScratchDirectories {
            for name in Posix.listDirectory(directory) {
                var info = stat()
                let path = "\(directory)/\(name)"
                if lstat(path, &info) == 0 && info.st_uid == Sandbox.runnerID { WorkDirectory.removeTree(path) }
            }
        }
    }

    func command(_ argv: [String]) -> [String] {
        guard confined else { return argv }
        return [Sandbox.setpriv, "--reuid=\(Sandbox.runnerID)", "--regid=\(Sandbox.runnerID)", "--clear-groups", "--no-new-privs", "--"] + argv
    }
}
