import Glibc

/// One cgroup v2 leaf per job step under /sys/fs/cgroup, holding the memory and process limits.
///
/// How a child lands in it: Swift cannot fork, glibc 2.36 has no posix_spawnattr_setcgroup_np, and
/// clone3(CLONE_INTO_CGROUP) would need a raw syscall. So the agent (single-threaded) moves itself
/// into the leaf, posix_spawns (the child inherits the cgroup before it runs a single instruction of
/// its own), and moves itself back. While it is inside, pids.max allows one extra process for the agent.
/// The agent is PID 1, which the cgroup's OOM killer and cgroup.kill never kill, so this is safe even
/// if something goes wrong in between.
struct CGroup {
    static let root = "/sys/fs/cgroup"
    let path: String
    let limits: ResourceLimitsForStep
    /// CPU time the cgroup had used before this step got it, in microseconds: none for a cgroup made
    /// for the step; for one made ahead (``PreparedJob``), the prepared shell's start-up in the
    /// snapshot's template, and its discard when a program step adopts the cgroup instead of a shell
    /// job (``adopting(_:)``). A step's CPU time and CPU limit count from here.
    var cpuBaselineMicroseconds = 0

    /// The limits a cgroup enforces for one step.
    struct ResourceLimitsForStep {
        var memoryBytes: Int
        var maxProcesses: Int
    }

    /// Is cgroup v2 mounted with the controllers we need delegated to children?
    static func available() -> Bool {
        guard let controllers = Posix.readText("\(root)/cgroup.subtree_control") else { return false }
        let names = controllers.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return names.contains("memory") && names.contains("pids")
    }

    static func create(name: String, limits: ResourceLimitsForStep) throws -> CGroup {
        var group = CGroup(path: "\(root)/\(name)", limits: limits)
        // It exists when it was made ahead by this function (``PreparedJob``; request numbers only
        // grow, so nothing else made one of this name): its settings stand, its limits are written.
        let made = mkdir(group.path, 0o755) == 0
        if !made && errno != EEXIST { throw AgentError.system("mkdir \(group.path)") }
        if !made { group.cpuBaselineMicroseconds = group.cpuMicroseconds ?? 0 }
        defer { if made { PhaseTrace.mark("cgroup") } else { PhaseTrace.mark("prepared cgroup") } }
        do {
            try Posix.writeControl("\(group.path)/memory.max", "\(limits.memoryBytes)")
            if made {
                // Absent without CONFIG_SWAP: then there is no swap to forbid.
                if Posix.exists("\(group.path)/memory.swap.max") { try Posix.writeControl("\(group.path)/memory.swap.max", "0") }
                // One OOM kill takes the whole job down instead of leaving a half-dead process tree.
                if Posix.exists("\(group.path)/memory.oom.group") { try Posix.writeControl("\(group.path)/memory.oom.group", "1") }
            }
            try group.makeRoomForAgent()
        } catch {
            rmdir(group.path)
            throw error
        }
        return group
    }

    /// This cgroup, made ahead with ``limits`` and settled (``PreparedJob``), holding `limits` instead.
    /// Only the files whose value differs are written: each write is a kernel path that a VM just
    /// restored from a snapshot has QEMU translate first, and a request usually keeps the defaults the
    /// template made it with. No room for the agent: nothing but the prepared shell will be in it.
    func adopting(_ limits: ResourceLimitsForStep) throws -> CGroup {
        defer { PhaseTrace.mark("prepared cgroup") }
        var adopted = CGroup(path: path, limits: limits)
        adopted.cpuBaselineMicroseconds = cpuMicroseconds ?? 0
        if limits.memoryBytes != self.limits.memoryBytes { try Posix.writeControl("\(path)/memory.max", "\(limits.memoryBytes)") }
        if limits.maxProcesses != self.limits.maxProcesses { try adopted.settle() }
        return adopted
    }

    /// Runs `body` (a spawn) with the agent inside this cgroup, then tightens pids.max to the real limit.
    func spawnInside(_ body: () throws -> pid_t) throws -> pid_t {
        try Posix.writeControl("\(path)/cgroup.procs", "\(getpid())")
        let result = Result { try body() }
        do {
            try Posix.writeControl("\(CGroup.root)/cgroup.procs", "\(getpid())")
        } catch {
            // Staying in a job cgroup would charge the agent to the job: kill what was spawned and fail the step.
            if case .success(let pid) = result { Glibc.kill(pid, SIGKILL) }
            throw error
        }
        let pid = try result.get()
        try settle()
        return pid
    }

    /// pids.max one above the step's limit, while the agent itself may enter to spawn.
    func makeRoomForAgent() throws {
        try Posix.writeControl("\(path)/pids.max", "\(limits.maxProcesses + 1)")
    }

    /// pids.max at the step's real limit, once nothing but the step's own processes will enter.
    func settle() throws {
        try Posix.writeControl("\(path)/pids.max", "\(limits.maxProcesses)")
    }

    /// SIGKILL to every process in the cgroup, forks in flight included.
    func killMembers() {
        if (try? Posix.writeControl("\(path)/cgroup.kill", "1")) == nil {
            // cgroup.kill is 5.14+; fall back to signalling each member.
            for pid in processes() { Glibc.kill(pid, SIGKILL) }
        }
    }

    func processes() -> [pid_t] {
        (Posix.readText("\(path)/cgroup.procs") ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    /// A "key value" line from a flat-keyed file such as memory.events or cpu.stat.
    func statistic(_ file: String, _ key: String) -> Int? {
        guard let bytes = try? Posix.readFile("\(path)/\(file)") else { return nil }
        return CGroupFile.statistic(Array(key.utf8), in: bytes)
    }

    /// A file holding one number, such as memory.peak; nil for `max` or anything else.
    func value(_ file: String) -> Int? {
        guard let bytes = try? Posix.readFile("\(path)/\(file)") else { return nil }
        return CGroupFile.number(bytes[...])
    }

    var oomKills: Int { statistic("memory.events", "oom_kill") ?? 0 }
    var cpuMicroseconds: Int? { statistic("cpu.stat", "usage_usec") }
    /// memory.peak is 5.19+; nil before, and callers sample memory.current instead.
    var peakMemory: Int? { value("memory.peak") }

    /// Whether the kernel has memory.peak, asked of the first cgroup that wants to know and then
    /// remembered (the kernel does not change): a snapshot's template asks it, so a VM restored from
    /// it does not read memory.peak before its job runs, only after.
    var kernelHasPeakMemory: Bool {
        if let known = CGroup.peakMemoryKnown { return known }
        let present = Posix.exists("\(path)/memory.peak")
        CGroup.peakMemoryKnown = present
        return present
    }
    nonisolated(unsafe) private static var peakMemoryKnown: Bool?

    var currentMemory: Int? { value("memory.current") }

    /// Kills what is left, reaps it (the agent is everyone's parent by now) and removes the cgroup.
    func destroy(reaper: ChildReaper) {
        let deadline = Posix.monotonicMilliseconds() + 5000
        while true {
            killMembers()
            reaper.reap()
            if rmdir(path) == 0 || errno == ENOENT { return }
            if Posix.monotonicMilliseconds() > deadline {
                Log.error("cannot remove \(path): \(String(cString: strerror(errno))); leaving it")
                return
            }
            Posix.sleep(milliseconds: 5)
        }
    }
}
