#if canImport(Glibc)
import Glibc
#endif
import MicroVM

/// Whether this host can run QEMU in a ``QEMUJail``, checked once at a worker's start so that a
/// host that cannot jail fails there, with every reason, instead of failing every job's boot.
///
/// It checks only what the launcher needs before QEMU runs: root (it changes uid, mounts and
/// writes cgroups), the launcher and `setpriv`, and a cgroup hierarchy it can write with the memory, cpu
/// and pids controllers. User namespaces are not needed: the launcher is root in the host's.
/// The inputs are fields so that tests can describe another host.
public struct QEMUJailProbe: Sendable {
    /// The effective uid the worker runs as.
    public var effectiveUID: UInt32
    /// Where the cgroup file systems are mounted.
    public var cgroupRoot: String
    /// `/proc/self/cgroup`: which cgroup the worker is in (VM cgroups go beside or under it).
    public var ownCgroups: String

    /// Describes this host unless told otherwise; `ownCgroups` nil reads this process's.
    public init(effectiveUID: UInt32 = geteuid(), cgroupRoot: String = "/sys/fs/cgroup", ownCgroups: String? = nil) {
        self.effectiveUID = effectiveUID
        self.cgroupRoot = cgroupRoot
        self.ownCgroups = ownCgroups ?? readSmallFile("/proc/self/cgroup") ?? ""
    }

    /// The controllers a VM's cgroup limits.
    static let controllers = ["memory", "cpu", "pids"]

    /// Every reason `jail` cannot work on this host, one sentence each; empty when it can.
    public func problems(for jail: QEMUJail) -> [String] {
        var problems: [String] = []
        if effectiveUID != 0 {
            problems.append("the worker runs as uid \(effectiveUID), not root: only root can give each QEMU its own uid, namespaces and root")
        }
        let launcher = jail.resolvedLauncherPath
        if access(launcher, X_OK) != 0 {
            problems.append("the jail's launcher \(launcher) is not executable (\(String(cString: strerror(errno)))): swift build -c release builds it beside the worker")
        }
        // Only a VM with network needs it (the egress proxy's own uid), but that is known per job.
        if access(jail.setprivPath, X_OK) != 0 {
            problems.append("setpriv \(jail.setprivPath) is not executable (\(String(cString: strerror(errno)))): install util-linux")
        }
        if jail.cgroup != nil { problems += cgroupProblems() }
        return problems
    }

    /// The directories VM cgroups are created in must exist, be writable (a read-only cgroupfs, as
    /// in many containers, is not) and offer the three controllers.
    private func cgroupProblems() -> [String] {
        if access(cgroupRoot + "/cgroup.controllers", F_OK) == 0 {
            // v2: VM cgroups go beside the worker's, in its parent (``QEMUCgroup/create``).
            let parent = ownPath(hierarchy: "").split(separator: "/").dropLast().joined(separator: "/")
            let directory = cgroupRoot + (parent.isEmpty ? "" : "/" + parent)
            if let problem = writableProblem(directory) { return [problem] }
            let available = (readSmallFile(directory + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace)
            let missing = Self.controllers.filter { !available.contains(Substring($0)) }
            return missing.isEmpty
                ? [] : ["cgroup v2 \(directory) does not offer the \(missing.joined(separator: ", ")) controller(s) (cgroup.controllers)"]
        }
        // v1: one hierarchy per controller, the VM's cgroup under the worker's in each.
        return Self.controllers.compactMap { controller in
            let own = ownPath(hierarchy: controller)
            return writableProblem(cgroupRoot + "/" + controller + (own.isEmpty ? "" : "/" + own))
        }
    }

    private func writableProblem(_ directory: String) -> String? {
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            return "cgroup directory \(directory) is missing: mount the cgroup hierarchy (v2, or v1 memory, cpu and pids)"
        }
        guard access(directory, W_OK) == 0 else {
            return "cgroup directory \(directory) is not writable (\(String(cString: strerror(errno)))): run the worker where it may create cgroups"
        }
        return nil
    }

    /// The worker's cgroup in `hierarchy` ("" for v2), as ``QEMUCgroup/ownCgroup(hierarchy:)`` reads it.
    private func ownPath(hierarchy: String) -> String {
        for line in ownCgroups.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let matches = hierarchy.isEmpty ? parts[1].isEmpty : parts[1].split(separator: ",").contains(Substring(hierarchy))
            if matches { return parts[2].split(separator: "/").joined(separator: "/") }
        }
        return ""
    }
}
