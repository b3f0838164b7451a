import MicroVM
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(1)))
struct VMMProcessTests {
    func spawn(_ arguments: [String], executable: String = "/bin/sh") async throws -> VMMProcess {
        try await VMMProcess.spawn(
            executable: executable, arguments: arguments, stdout: ConsoleRing(capacity: 4096), stderr: ConsoleRing(capacity: 4096))
    }

    @Test func separatesStdoutAndStderrAndReportsTheExitStatus() async throws {
        let process = try await spawn(["-c", "echo out; echo err >&2; exit 3"])
        let status = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs()
        #expect(status == .exited(3))
        #expect(process.stdout.tail() == "out\n")
        #expect(process.stderr.tail() == "err\n")
    }

    /// The CPU time counts what the process's own reaped children used: a jailed QEMU is the
    /// launcher's child, and its CPU must reach the VM's usage. A grandchild burns the CPU here.
    @Test func cpuTimeCountsReapedDescendantsAndIsKnownOnlyOnceReaped() async throws {
        let process = try await spawn(["-c", "( i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done ) ; true"])
        #expect(process.cpuTime == nil, "not reaped yet")
        let clock = ContinuousClock()
        let start = clock.now
        let status = await process.waitForExitIgnoringCancellation()
        let wall = clock.now - start
        await process.closeOutputs()
        #expect(status == .exited(0))
        let cpu = try #require(process.cpuTime)
        // 300k iterations of a shell loop are well over 100 ms of CPU on any machine, all of it the
        // subshell's, which the outer shell reaped.
        #expect(cpu > .milliseconds(100), "\(cpu)")
        #expect(cpu <= wall + .milliseconds(20), "one thread cannot use more CPU than wall time: \(cpu) in \(wall)")
    }

    @Test func usageOfSeveralVMsIsTheirSumUnlessOneIsUnknown() {
        var usage = VMUsage(vmmCPUTime: .zero)
        usage.add(.milliseconds(30))
        usage.add(.milliseconds(12))
        #expect(usage.vmmCPUTime == .milliseconds(42))
        usage.add(nil)
        #expect(usage.vmmCPUTime == nil)
        usage.add(.milliseconds(5))
        #expect(usage.vmmCPUTime == nil, "a partial sum would understate the cost")
    }

    @Test func outputIsDrainedContinuouslyIntoBoundedRings() async throws {
        // 4 MiB through a 64 KiB pipe: the child only finishes if someone keeps reading.
        let ring = ConsoleRing(capacity: 4096)
        let process = try await VMMProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", "yes x | head -c 4194304; echo done >&2"], stdout: ring, stderr: ring)
        let status = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs()
        #expect(status == .exited(0))
        // One ring for both streams, as the Firecracker driver uses it: the 5 bytes are stderr's "done\n".
        // (Where they land in the ring is up to the two drains: the pipes are read independently.)
        #expect(ring.totalBytes == 4 << 20 + 5)
        #expect(ring.snapshot().count == 4096)
    }

    @Test func environmentReplacesOursWhenGiven() async throws {
        let ring = ConsoleRing(capacity: 4096)
        let process = try await VMMProcess.spawn(
            executable: "/usr/bin/env", arguments: [], environment: ["PATH=/bin", "CODEBENCH_TEST=1"], stdout: ring, stderr: ring)
        #expect(await process.waitForExitIgnoringCancellation() == .exited(0))
        await process.closeOutputs()
        #expect(ring.tail() == "PATH=/bin\nCODEBENCH_TEST=1\n")
        let inherited = try await spawn(["-c", "echo $HOME"])
        _ = await inherited.waitForExitIgnoringCancellation()
        await inherited.closeOutputs()
        #expect(inherited.stdout.tail() != "\n")
    }

    @Test func inheritsOnlyStdinStdoutAndStderr() async throws {
        // A descriptor without close-on-exec, as a pipe another thread has not yet marked would be.
        var leaked: [Int32] = [-1, -1]
        #expect(pipe(&leaked) == 0)
        defer { close(leaked[0]); close(leaked[1]) }
        let process = try await spawn(["-c", "ls /proc/self/fd"], executable: "/bin/sh")
        _ = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs()
        // The shell's own descriptors are 0-2 and the one ls opens to read the directory.
        let descriptors = process.stdout.tail().split(separator: "\n").compactMap { Int32($0) }
        #expect(!descriptors.contains(leaked[0]) && !descriptors.contains(leaked[1]), "child saw \(descriptors), leaked \(leaked)")
        #expect(descriptors.filter { $0 > 3 }.isEmpty, "\(descriptors)")
    }

    /// Passed descriptors become the child's 3, 4, ... in order, whatever their numbers here (a
    /// copy-on-write QEMU reads its memfd as 3 and its state as 4).
    @Test func passedDescriptorsBecomeThreeFourInOrder() async throws {
        let directory = "/tmp/vmmprocess-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o700)
        defer { for name in ["a", "b"] { unlink(directory + "/" + name) }; rmdir(directory) }
        let fds = ["a", "b"].map { open(directory + "/" + $0, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        defer { for fd in fds { close(fd) } }
        #expect(fds.allSatisfy { $0 >= 0 })
        // Reversed: the child's 3 is b, its 4 is a.
        let process = try await VMMProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", "readlink /proc/self/fd/3 /proc/self/fd/4; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
            passing: fds.reversed(), stdout: ConsoleRing(capacity: 4096), stderr: ConsoleRing(capacity: 4096))
        #expect(await process.waitForExitIgnoringCancellation() == .exited(0))
        await process.closeOutputs()
        let lines = process.stdout.tail().split(separator: "\n").map(String.init)
        #expect(lines.prefix(2) == [directory + "/b", directory + "/a"], "\(lines)")
        // 0-2, the two passed, and the one `ls` opens for /proc/self/fd.
        #expect(lines.last == "0 1 2 3 4 5 ", "\(lines)")
    }

    @Test func startsWithNoBlockedOrIgnoredSignalsInItsOwnProcessGroup() async throws {
        // Block and ignore signals in this thread: the child must inherit neither.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let process = try await spawn(["/proc/self/status"], executable: "/bin/cat")
        _ = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs()
        let status = process.stdout.tail(maxBytes: 4096)
        #expect(status.contains("SigBlk:\t0000000000000000"))
        // Only the classic signals: glibc's posix_spawn leaves its two internal real-time signals (32, 33) ignored.
        let ignored = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(8), radix: 16) }
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "\(status)")
    }

    @Test func killEndsTheWholeProcessGroup() async throws {
        let process = try await spawn(["-c", "sleep 100 & echo $!; wait"])
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while !process.stdout.tail().contains("\n"), clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let grandchild = try #require(Int32(process.stdout.tail().trimmingNewline))
        #expect(getpgid(grandchild) == process.pid)
        process.kill()
        #expect(await process.waitForExitIgnoringCancellation() == .signaled(SIGKILL))
        // The orphaned grandchild is SIGKILLed too; init reaps it shortly after.
        var gone = false
        while clock.now < deadline {
            let state = ProcessIdentity.of(pid: grandchild)
            if state == nil || processState(grandchild) == "Z" {
                gone = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(gone)
        await process.closeOutputs()
    }

    @Test func waitingIsCancellable() async throws {
        let process = try await spawn(["-c", "sleep 100"])
        let task = Task { try await process.waitForExit() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        process.kill()
        _ = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs()
    }

    @Test func missingExecutableIsVMMUnavailable() async throws {
        let error = await #expect(throws: VMError.self) { try await spawn([], executable: "/nonexistent/qemu") }
        #expect(error?.code == .vmmUnavailable)
    }

    func processState(_ pid: Int32) -> String? {
        ProcessStat.of(pid: pid).map { String($0.state) }
    }
}

extension String {
    var trimmingNewline: String { split(separator: "\n").first.map(String.init) ?? "" }
}
