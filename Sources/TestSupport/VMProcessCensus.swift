import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// What is left of VMs on the host: live VMM processes that are children of this process, and
/// entries in a runtime directory. Tests compare a census before and after to prove teardown.
public struct VMProcessCensus: Sendable, Equatable, CustomStringConvertible {
    /// Pids of this process's children whose command name starts with one of the census's prefixes.
    public var vmmChildren: [Int32]
    /// Names in the runtime directory.
    public var runtimeEntries: [String]

    /// Counts children of this process named like one of `commandPrefixes` (`qemu-system`, or a
    /// jailed QEMU's launcher, `codebench-jail`; the kernel truncates comm to 15 bytes)
    /// whose command line mentions `runtimeDirectory` (so VMs of other tests running in the same
    /// process, under other runtime roots, are not counted), and the entries of `runtimeDirectory`.
    public static func take(
        runtimeDirectory: String, commandPrefixes: [String] = ["qemu-system", "codebench-jail"]
    ) -> VMProcessCensus {
        let me = getpid()
        var children: [Int32] = []
        for name in RuntimeDirectory.entries(of: "/proc") {
            // Zombies count too: they were not reaped.
            guard let pid = Int32(name), let stat = ProcessStat.of(pid: pid), stat.parent == me,
                commandPrefixes.contains(where: stat.name.hasPrefix)
            else { continue }
            // A zombie has an empty cmdline: it is ours if nobody else's VMs are children of this process.
            let commandLine = readCommandLine(pid)
            guard commandLine.isEmpty || commandLine.contains(runtimeDirectory + "/") else { continue }
            children.append(pid)
        }
        return VMProcessCensus(vmmChildren: children.sorted(), runtimeEntries: RuntimeDirectory.entries(of: runtimeDirectory).sorted())
    }

    /// The pids whose parent is `parent`.
    public static func children(of parent: Int32) -> [Int32] {
        RuntimeDirectory.entries(of: "/proc").compactMap { name -> Int32? in
            guard let pid = Int32(name), ProcessStat.of(pid: pid)?.parent == parent else { return nil }
            return pid
        }
    }

    public var description: String {
        "VMM children: \(vmmChildren), runtime entries: \(runtimeEntries)"
    }

    /// The NUL-separated arguments of a process joined by spaces; empty for zombies.
    private static func readCommandLine(_ pid: Int32) -> String {
        (readSmallFile("/proc/\(pid)/cmdline") ?? "").replacingOccurrences(of: "\0", with: " ")
    }
}
