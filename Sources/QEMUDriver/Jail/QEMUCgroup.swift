#if canImport(Glibc)
import Glibc
#endif
import MicroVM

/// One VM's cgroup: memory (no swap), CPU and task limits, and how many times the kernel's OOM
/// killer struck in it. cgroup v2 (`/sys/fs/cgroup/cgroup.controllers`) when the host has it,
/// else the v1 `memory`, `cpu` and `pids` hierarchies (as on this project's CI hosts).
/// Each VM's cgroup is nested under the worker's own, so the worker's limits still bound all of them.
struct QEMUCgroup: Sendable, Hashable {
    /// Every directory created (one per v1 hierarchy, one on v2), removed with the VM.
    var directories: [String]
    /// The directory whose memory files tell about OOM kills.
    var memoryDirectory: String
    var isV2: Bool
    var memoryLimitBytes: Int

    static let root = "/sys/fs/cgroup"
    static var isV2Host: Bool { access(root + "/cgroup.controllers", F_OK) == 0 }

    /// `cgroup.procs` of every directory: the launcher writes its pid into each before exec.
    var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }

    /// memory.max = guest memory + translation cache + QEMU's overhead.
    static func memoryLimitBytes(memoryMiB: Int, translationCacheMiB: Int?, limits: QEMUCgroupLimits) -> Int {
        (memoryMiB + (translationCacheMiB ?? 0) + limits.overheadMiB) << 20
    }

    /// Creates `codebench-qemu/<name>` under this process's cgroup in each hierarchy and sets its limits.
    static func create(name: String, memoryLimitBytes: Int, vcpus: Int, limits: QEMUCgroupLimits) throws -> QEMUCgroup {
        let quota = limits.cpuQuotaMicrosecondsPerVCPU * vcpus
        if isV2Host {
            let base = parent(hierarchy: "")
            try makeDirectory(base)
            try? write(base + "/cgroup.subtree_control", "+memory +cpu +pids")
            let directory = base + "/" + name
            try makeDirectory(directory)
            let cgroup = QEMUCgroup(directories: [directory], memoryDirectory: directory, isV2: true, memoryLimitBytes: memoryLimitBytes)
            do {
                try write(directory + "/memory.max", String(memoryLimitBytes))
                try? write(directory + "/memory.swap.max", "0")
                try write(directory + "/cpu.max", "\(quota) \(limits.cpuPeriodMicroseconds)")
                try write(directory + "/pids.max", String(limits.maximumTasks))
            } catch {
                cgroup.remove()
                throw error
            }
            return cgroup
        }
        var directories: [String] = []
        func child(_ hierarchy: String) throws -> String {
            let base = parent(hierarchy: hierarchy)
            try makeDirectory(base)
            let directory = base + "/" + name
            try makeDirectory(directory)
            directories.append(directory)
            return directory
        }
        do {
            let memory = try child("memory")
            try write(memory + "/memory.limit_in_bytes", String(memoryLimitBytes))
            // memsw = memory: no swap. Absent when the kernel accounts no swap; then there is none to use.
            try? write(memory + "/memory.memsw.limit_in_bytes", String(memoryLimitBytes))
            let cpu = try child("cpu")
            try write(cpu + "/cpu.cfs_period_us", String(limits.cpuPeriodMicroseconds))
            try write(cpu + "/cpu.cfs_quota_us", String(quota))
            let pids = try child("pids")
            try write(pids + "/pids.max", String(limits.maximumTasks))
            return QEMUCgroup(directories: directories, memoryDirectory: memory, isV2: false, memoryLimitBytes: memoryLimitBytes)
        } catch {
            QEMUCgroup(directories: directories, memoryDirectory: "", isV2: false, memoryLimitBytes: 0).remove()
            throw error
        }
    }

    /// The share of CPU its processes get when they compete with other VMs' (cgroup v2 `cpu.weight`,
    /// v1 `cpu.shares`); the quota stays as it is.
    enum CPUWeight {
        /// The kernel's default: every VM's QEMU alike.
        case normal
        /// A standby QEMU starting up (``QEMUStandbyPool``): it yields to the VMs running jobs.
        case standby

        var v2: Int { self == .normal ? 100 : 1 }
        var v1: Int { self == .normal ? 1024 : 2 }
    }

    /// Best effort: a weight the kernel refuses only costs a standby's neighbours some CPU.
    func setCPUWeight(_ weight: CPUWeight) {
        if isV2 {
            try? Self.write(cpuDirectory + "/cpu.weight", String(weight.v2))
        } else if !cpuDirectory.isEmpty {
            try? Self.write(cpuDirectory + "/cpu.shares", String(weight.v1))
        }
    }

    /// How many processes the kernel's OOM killer killed in this cgroup (`oom_kill` of v2's
    /// memory.events, v1's memory.oom_control).
    var oomKills: Int {
        Self.statistic("oom_kill", in: memoryDirectory + (isV2 ? "/memory.events" : "/memory.oom_control")) ?? 0
    }

    /// The value of `key` in a flat-keyed cgroup file (`key value` lines); nil when absent.
    private static func statistic(_ key: String, in file: String) -> Int? {
        guard let text = readSmallFile(file) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key, let value = Int(fields[1]) { return value }
        }
        return nil
    }

    /// The v1 `cpu` hierarchy's directory of this cgroup (v2 has one directory for all).
    private var cpuDirectory: String { isV2 ? memoryDirectory : directories.first { $0.contains("/cpu/") } ?? "" }

    /// How long the CPU quota held the VM's QEMU back, in milliseconds (v2 `throttled_usec`, v1
    /// `throttled_time` of cpu.stat), for the VM's teardown log.
    var throttledMilliseconds: Int? {
        let (key, divisor) = isV2 ? ("throttled_usec", 1000) : ("throttled_time", 1_000_000)
        return Self.statistic(key, in: cpuDirectory + "/cpu.stat").map { $0 / divisor }
    }

    /// The reason a job's error gives when QEMU died of its cgroup's memory limit.
    var oomReason: String? {
        oomKills > 0
            ? "the kernel's OOM killer killed QEMU: it reached its cgroup's memory limit (\(memoryLimitBytes >> 20) MiB = guest memory + translation cache + QEMU overhead)"
            : nil
    }

    /// Removes the directories (call once every process in them is dead; retried briefly while the
    /// kernel finishes tearing the last one down).
    func remove() {
        for directory in directories where !directory.isEmpty {
            for _ in 0..<50 {
                if rmdir(directory) == 0 || errno == ENOENT { break }
                usleep(10_000)
            }
        }
    }

    /// The directory VM cgroups are made in, in `hierarchy` (a v1 controller name, or "" for v2).
    static func parent(hierarchy: String) -> String {
        let own = ownCgroup(hierarchy: hierarchy)
        guard hierarchy.isEmpty else { return root + "/" + hierarchy + (own.isEmpty ? "" : "/" + own) + "/codebench-qemu" }
        // v2 forbids processes in a cgroup whose controllers are delegated to children, so VM
        // cgroups go beside the worker's, under a parent that only holds VMs.
        let parentOfOwn = own.split(separator: "/").dropLast().joined(separator: "/")
        return root + (parentOfOwn.isEmpty ? "" : "/" + parentOfOwn) + "/codebench-qemu"
    }

    /// Every directory VM cgroups are made in (one per v1 hierarchy, one on v2).
    static var parents: [String] {
        (isV2Host ? [""] : ["memory", "cpu", "pids"]).map { parent(hierarchy: $0) }
    }

    /// Removes the cgroups of VMs whose runtime directory under `runtimeRoot` is gone (a worker
    /// SIGKILLed before its teardown; its QEMUs died with it): ``isLeftover(_:named:runtimeRoot:minimumAge:)``.
    static func sweepLeftovers(runtimeRoot: String, minimumAge: Duration = .seconds(60)) -> Int {
        var removed = 0
        for parent in parents {
            for name in RuntimeDirectory.entries(of: parent) {
                let directory = parent + "/" + name
                guard isLeftover(directory, named: name, runtimeRoot: runtimeRoot, minimumAge: minimumAge), rmdir(directory) == 0 else { continue }
                removed += 1
            }
        }
        return removed
    }

    /// Whether the cgroup `directory` is a dead VM's. One that still holds a process, or whose VM
    /// directory exists, is not (the kernel refuses to remove a populated one anyway). Nor is one
    /// younger than `minimumAge`: it may be another worker's (another runtime root, the same cgroup
    /// parent) between its creation and its launcher's entry, when it is empty too.
    static func isLeftover(_ directory: String, named name: String, runtimeRoot: String, minimumAge: Duration) -> Bool {
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return false }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard Duration.seconds(now.tv_sec - info.st_ctim.tv_sec) >= minimumAge else { return false }
        guard access(runtimeRoot + "/" + name, F_OK) != 0 else { return false }
        let procs = readSmallFile(directory + "/cgroup.procs") ?? "x"
        return procs.allSatisfy { $0 == "\n" }
    }

    /// This process's cgroup path in `hierarchy` (a v1 controller name, or "" for v2), without the leading slash.
    static func ownCgroup(hierarchy: String) -> String {
        guard let text = readSmallFile("/proc/self/cgroup") else { return "" }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let matches = hierarchy.isEmpty ? parts[1].isEmpty : parts[1].split(separator: ",").contains(Substring(hierarchy))
            if matches { return parts[2].split(separator: "/").joined(separator: "/") }
        }
        return ""
    }

    private static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw VMError(.bootFailed, "cannot create the VM's cgroup \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func write(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VMError(.bootFailed, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw VMError(.bootFailed, "cannot write \(value) to \(path): \(String(cString: strerror(errno)))")
        }
    }
}

extension QEMUDriver.Configuration {
    /// QEMU's translation cache when unbounded (`tb-size` unset): it grows up to 1 GiB.
    static let unboundedTranslationCacheMiB = 1024

    /// The most memory one VM's QEMU may use, its cgroup's `memory.max`: guest memory, the TCG
    /// translation cache under TCG, and QEMU's own overhead. nil when nothing bounds QEMU (unjailed,
    /// or jailed without a cgroup). The one place this figure is computed: the driver sets the limit
    /// with it and the worker sizes its default concurrency by it.
    public func vmMemoryLimitBytes(guestMemoryMiB: Int) -> Int? {
        guard let limits = jail?.cgroup else { return nil }
        let translationCacheMiB = accelerator == .tcg ? tcgTranslationCacheMiB ?? Self.unboundedTranslationCacheMiB : nil
        return QEMUCgroup.memoryLimitBytes(memoryMiB: guestMemoryMiB, translationCacheMiB: translationCacheMiB, limits: limits)
    }
}
