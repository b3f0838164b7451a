import Foundation
import MicroVM
import QEMUDriver
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// ``QEMUJailProbe`` on described hosts (a cgroup tree in a temporary directory), and the one
/// memory figure the driver's cgroup and the worker's concurrency share.
@Suite struct QEMUJailProbeTests {
    /// A v2 tree whose worker cgroup is `/system.slice/worker.service`: VM cgroups go in `system.slice`.
    static func v2Host(controllers: String) throws -> (TemporaryDirectory, QEMUJailProbe) {
        let root = try TemporaryDirectory(prefix: "cbcg")
        try root.write("cgroup.controllers", "cpuset cpu io memory pids\n")
        #expect(mkdir(root.file("system.slice"), 0o755) == 0)
        try root.write("system.slice/cgroup.controllers", controllers)
        return (root, QEMUJailProbe(effectiveUID: 0, cgroupRoot: root.path, ownCgroups: "0::/system.slice/worker.service\n"))
    }

    @Test func aRootWorkerWithTheToolsAndAWritableV2ParentCanJail() throws {
        let (root, probe) = try Self.v2Host(controllers: "cpu io memory pids\n")
        defer { root.remove() }
        #expect(probe.problems(for: QEMUJail()) == [])
    }

    @Test func aMissingControllerIsNamed() throws {
        let (root, probe) = try Self.v2Host(controllers: "cpu io memory\n")
        defer { root.remove() }
        #expect(probe.problems(for: QEMUJail()) == ["cgroup v2 \(root.path)/system.slice does not offer the pids controller(s) (cgroup.controllers)"])
        // Without cgroup limits the jail does not need them.
        #expect(probe.problems(for: QEMUJail(cgroup: nil)) == [])
    }

    @Test func everyProblemIsReportedNotOnlyTheFirst() throws {
        let root = try TemporaryDirectory(prefix: "cbcg")
        defer { root.remove() }
        // v1 (no cgroup.controllers at the root) with no hierarchy mounted, as a user, without util-linux.
        let probe = QEMUJailProbe(effectiveUID: 1000, cgroupRoot: root.path, ownCgroups: "4:memory:/\n3:cpu,cpuacct:/\n2:pids:/\n")
        let problems = probe.problems(for: QEMUJail(launcherPath: "/nonexistent/codebench-jail", setprivPath: "/nonexistent/setpriv"))
        #expect(problems.count == 6, "\(problems)")
        #expect(problems.first?.hasPrefix("the worker runs as uid 1000, not root") == true)
        #expect(problems.contains { $0.hasPrefix("setpriv /nonexistent/setpriv is not executable") })
        #expect(problems.contains { $0.hasPrefix("the jail's launcher /nonexistent/codebench-jail is not executable") })
        for controller in ["memory", "cpu", "pids"] {
            #expect(problems.contains { $0.hasPrefix("cgroup directory \(root.path)/\(controller) is missing") }, "\(controller): \(problems)")
        }
    }

    @Test func v1HierarchiesAreCheckedUnderTheWorkersOwnCgroup() throws {
        let root = try TemporaryDirectory(prefix: "cbcg")
        defer { root.remove() }
        for directory in ["memory/w", "cpu/w", "pids"] {
            #expect(mkdir(root.file(directory.split(separator: "/")[0].description), 0o755) == 0 || errno == EEXIST)
            #expect(mkdir(root.file(directory), 0o755) == 0 || errno == EEXIST)
        }
        let probe = QEMUJailProbe(effectiveUID: 0, cgroupRoot: root.path, ownCgroups: "4:memory:/w\n3:cpu,cpuacct:/w\n2:pids:/w\n")
        #expect(probe.problems(for: QEMUJail()) == ["cgroup directory \(root.path)/pids/w is missing: mount the cgroup hierarchy (v2, or v1 memory, cpu and pids)"])
    }

    @Test(.enabled(if: geteuid() == 0, "the jail needs root")) func thisHostCanJail() {
        // Where QEMUJailTests run, the worker's start check must pass too.
        #expect(QEMUJailProbe().problems(for: QEMUJail()) == [])
    }

    @Test func theVMMemoryLimitIsGuestPlusTranslationCachePlusOverhead() {
        let jailed = QEMUDriver.Configuration(accelerator: .tcg, jail: QEMUJail())
        #expect(jailed.vmMemoryLimitBytes(guestMemoryMiB: 256) == (256 + 64 + 96) << 20)
        var unbounded = jailed
        unbounded.tcgTranslationCacheMiB = nil
        #expect(unbounded.vmMemoryLimitBytes(guestMemoryMiB: 256) == (256 + 1024 + 96) << 20, "QEMU's own 1 GiB cache")
        // KVM translates nothing.
        #expect(QEMUDriver.Configuration(accelerator: .kvm, jail: QEMUJail()).vmMemoryLimitBytes(guestMemoryMiB: 512) == (512 + 96) << 20)
        // Nothing bounds an unjailed QEMU, or a jailed one without a cgroup.
        #expect(QEMUDriver.Configuration(accelerator: .tcg).vmMemoryLimitBytes(guestMemoryMiB: 256) == nil)
        #expect(QEMUDriver.Configuration(accelerator: .tcg, jail: QEMUJail(cgroup: nil)).vmMemoryLimitBytes(guestMemoryMiB: 256) == nil)
    }
}
