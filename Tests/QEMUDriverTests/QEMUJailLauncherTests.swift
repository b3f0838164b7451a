import MicroVM
import TestSupport
import Testing

@testable import QEMUDriver

#if canImport(Glibc)
import Glibc
#endif

/// The real `codebench-jail` with a shell in QEMU's place: what the process it execs gets, how its
/// exit is reported, and how a failed step is named. No VM; `QEMUJailTests` checks a running QEMU.
@Suite(.serialized) struct QEMUJailLauncherTests {
    /// A runtime directory with the jail's root mount point and socket directory, and a stand-in root
    /// filesystem and snapshot state file.
    struct Fixture {
        let directory: TemporaryDirectory
        var launcher: QEMUJailLauncher

        init(uid: UInt32 = QEMUJail().uidRange.upperBound) throws {
            directory = try TemporaryDirectory(prefix: "cbjl")
            for name in ["root", "run"] { #expect(mkdir(directory.file(name), 0o755) == 0) }
            try writeSmallFile(directory.file("rootfs"), "rootfs")
            try writeSmallFile(directory.file("state"), "the incoming state\n")
            launcher = QEMUJailLauncher(
                jail: QEMUJail(cgroup: nil), qemuPath: "/bin/sh", rootMountPoint: directory.file("root"), socketDirectory: directory.file("run"),
                kernelPath: nil, rootfsPath: directory.file("rootfs"), uid: uid, bindKVM: false, fileSizeLimit: 1 << 20)
        }

        /// Runs `script` with `sh -c` as the jailed command; its stdout, stderr and exit.
        func run(_ script: String) async throws -> (stdout: String, stderr: String, status: VMMProcess.ExitStatus) {
            let process = try await VMMProcess.spawn(
                executable: launcher.executable, arguments: launcher.arguments(qemuArguments: ["-c", script]),
                environment: QEMUJailLauncher.environment, stdout: ConsoleRing(capacity: 1 << 16), stderr: ConsoleRing(capacity: 1 << 16))
            let status = await process.waitForExitIgnoringCancellation()
            await process.waitForOutputEOF(within: .seconds(2))
            return (process.stdout.tail(maxBytes: 1 << 16), process.stderr.tail(maxBytes: 1 << 16), status)
        }
    }

    @Test func theCommandRunsUnprivilegedInTheJailsRoot() async throws {
        var fixture = try Fixture()
        defer { fixture.directory.remove() }
        fixture.launcher.keepsProc = true
        fixture.launcher.incomingStatePath = fixture.directory.file("state")
        fixture.launcher.fileSizeLimit = 12_345 * 512
        let (stdout, stderr, status) = try await fixture.run(
            "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' /proc/self/status; echo pid=$$; ls -A /; cat <&3; ulimit -f; ulimit -n; "
                + "cat /proc/self/mountinfo; ls /proc")
        #expect(status == .exited(0), "\(stderr)")
        let lines = stdout.split(separator: "\n").map(String.init)
        let uid = QEMUJail().uidRange.upperBound
        let gid = QEMUJail().gid
        for expected in ["Uid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)", "Gid:\t\(gid)\t\(gid)\t\(gid)\t\(gid)", "NoNewPrivs:\t1"] {
            #expect(lines.contains(expected), "\(stdout)")
        }
        #expect(lines.contains { $0.hasPrefix("Groups:") && $0.dropFirst("Groups:".count).allSatisfy(\.isWhitespace) }, "no supplementary group")
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(lines.contains("\(set):\t0000000000000000"), "\(set): \(stdout)")
        }
        // The shell is PID 1 of its own PID namespace, in a root holding only what the jail puts there.
        #expect(lines.contains("pid=1"))
        for entry in ["usr", "vm", "dev", "run", "proc"] { #expect(lines.contains(entry), "\(entry): \(stdout)") }
        #expect(!lines.contains("etc") && !lines.contains("tmp") && !lines.contains(".old"), "\(stdout)")
        #expect(lines.contains("the incoming state"), "descriptor 3 is the snapshot's state")
        #expect(lines.contains("12345") && lines.contains("256"), "RLIMIT_FSIZE in 512-byte blocks, RLIMIT_NOFILE")
        let mounts = QEMUJailTests.mountOptions(stdout)
        #expect(mounts["/"].map { Set(["ro", "nosuid", "nodev"]).isSubset(of: $0) } == true, "\(stdout)")
        #expect(mounts["/vm/rootfs"].map { Set(["ro", "nosuid", "nodev", "noexec"]).isSubset(of: $0) } == true, "\(stdout)")
        // The pid-only proc of its own namespace: its own processes, nothing of the host's.
        #expect(mounts["/proc"].map { Set(["nosuid", "nodev", "noexec"]).isSubset(of: $0) } == true, "\(stdout)")
        #expect(lines.contains { $0.contains(" /proc ") && $0.contains("hidepid=invisible") && $0.contains("subset=pid") }, "\(stdout)")
        #expect(lines.contains("thread-self") && !lines.contains("sys") && !lines.contains("kcore"), "\(stdout)")
    }

    @Test func aStreamedVMsJailHasNoProcAndNoKernel() async throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let (stdout, stderr, status) = try await fixture.run("ls -A /proc | wc -l; ls -A /vm; exec 3<&- 2>/dev/null; echo done")
        #expect(status == .exited(0), "\(stderr)")
        #expect(stdout == "0\nrootfs\ndone\n")
    }

    @Test func itExitsAsItsCommandDid() async throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        #expect(try await fixture.run("exit 7").status == .exited(7))
        // Killed from the host, as the worker kills QEMU (SIGKILL: a namespace's init ignores the
        // signals it has no handler for): the launcher dies of the same signal.
        let process = try await VMMProcess.spawn(
            executable: fixture.launcher.executable, arguments: fixture.launcher.arguments(qemuArguments: ["-c", "echo started; exec sleep 30"]),
            environment: QEMUJailLauncher.environment, stdout: ConsoleRing(capacity: 1 << 12), stderr: ConsoleRing(capacity: 1 << 12))
        let started = await eventually(timeout: .seconds(10)) { process.stdout.tail(maxBytes: 100) == "started\n" }
        #expect(started)
        let children = (readSmallFile("/proc/\(process.pid)/task/\(process.pid)/children") ?? "").split(separator: " ").compactMap { pid_t($0) }
        #expect(children.count == 1)
        for child in children { kill(child, SIGKILL) }
        #expect(await process.waitForExitIgnoringCancellation() == .signaled(SIGKILL))
    }

    @Test func aFailedStepIsNamedAndNothingRuns() async throws {
        var fixture = try Fixture()
        defer { fixture.directory.remove() }
        fixture.launcher.rootfsPath = fixture.directory.file("missing-rootfs")
        let (stdout, stderr, status) = try await fixture.run("echo ran")
        #expect(status == .exited(125))
        #expect(stdout.isEmpty)
        #expect(stderr == "codebench-jail: bind \(fixture.directory.file("missing-rootfs")): No such file or directory\n")
        var unknownCgroup = try Fixture()
        defer { unknownCgroup.directory.remove() }
        unknownCgroup.launcher.cgroupProcsFiles = [unknownCgroup.directory.file("no-such-cgroup/cgroup.procs")]
        let refused = try await unknownCgroup.run("echo ran")
        #expect(refused.status == .exited(125))
        #expect(refused.stderr.hasPrefix("codebench-jail: open \(unknownCgroup.directory.file("no-such-cgroup/cgroup.procs")):"))
    }
}
