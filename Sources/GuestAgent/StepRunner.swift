import Glibc

/// One process tree to run: a compile or the program itself.
struct StepSpec {
    var name: String
    var argv: [String]
    var environment: [String]
    var directory: String
    var stdinFD: Int32
    var wallTimeMilliseconds: Int
    var memoryBytes: Int
    var maxProcesses: Int
    var maxOutputBytesPerStream: Int
    /// The cgroup's CPU time (cpu.stat usage_usec), polled while the step runs; nil: no CPU limit.
    var cpuTimeMilliseconds: Int? = nil
    /// RLIMIT_FSIZE of the step's processes; nil: unlimited (its tmpfs still bounds it).
    var maxFileSizeBytes: Int? = nil
    /// Fork the program from this warm interpreter instead of spawning `argv` (judge cases; the sandbox
    /// must be confined, because the case process joins the step's cgroup itself).
    var forked: ForkedProgram? = nil
    /// Where the output goes while the step runs (a streamed run); nil: only into the outcome.
    var output: OutputSink? = nil
    /// Takes the removal of the step's cgroup when it may wait until the result is sent (the last step
    /// of a request); nil: removed before ``StepRunner/run(_:)`` returns. The step's processes are
    /// killed either way before the outcome is read.
    var cleanUpLater: ((@escaping () -> Void) -> Void)? = nil
    /// Run the command in this shell, started ahead in the step's cgroup (its name is this step's),
    /// instead of spawning `argv` (which is then unused); the command and stdin are loaded already.
    var preparedShell: PreparedShell? = nil
}

/// A program a ``ForkServer`` starts: what `argv` would have run, without the interpreter's start-up.
struct ForkedProgram {
    let server: ForkServer
    let entry: String
    let importable: Bool
    let arguments: [String]
}

/// What happened to a step, before it is turned into a verdict.
struct StepOutcome {
    var exitCode: Int32?
    var signal: Int32?
    var stdout: [UInt8]
    var stderr: [UInt8]
    var stdoutTruncated: Bool
    var stderrTruncated: Bool
    var timedOut: Bool
    /// Killed for using more than ``StepSpec/cpuTimeMilliseconds`` of CPU time.
    var cpuTimedOut: Bool = false
    var outputOverflow: Bool
    var oomKilled: Bool
    var wallTimeMilliseconds: Int
    var cpuTimeMilliseconds: Int
    var peakMemoryBytes: Int

    var succeeded: Bool { exitCode == 0 && !timedOut && !cpuTimedOut && !outputOverflow && !oomKilled }
}

/// Spawns a step, feeds nothing (stdin is a file), collects both output pipes with poll() and enforces
/// the wall-time and output limits; the cgroup enforces memory and process count.
struct StepRunner {
    let sandbox: Sandbox
    let reaper: ChildReaper

    /// After the main process exits (or is killed), how long leftover output may take to drain.
    private static let drainGraceMilliseconds = 2000
    /// memory.current sampling period when the kernel has no memory.peak.
    private static let samplePeriodMilliseconds = 10
    /// How often cpu.stat is read under a CPU limit: a program overruns its limit by at most about this.
    private static let cpuPollMilliseconds = 20

    /// The program forked from its warm interpreter; nil when the server failed (it is retired, and the
    /// caller spawns `argv` instead: the fork server only saves time, it never decides a verdict).
    private func launch(
        _ forked: ForkedProgram, _ spec: StepSpec, cgroup: CGroup, stdout: Int32, stderr: Int32, started: inout Int
    ) throws -> pid_t? {
        // The case process never brings the agent in: the real limit from the start.
        try cgroup.settle()
        let request = ForkServer.Request(
            cgroup: cgroup.path, directory: spec.directory, entry: forked.entry, importable: forked.importable,
            maxFileSizeBytes: spec.maxFileSizeBytes, arguments: forked.arguments, environment: spec.environment)
        started = Posix.monotonicMilliseconds()
        let pid: pid_t
        do {
            pid = try forked.server.launch(request, stdin: spec.stdinFD, stdout: stdout, stderr: stderr)
        } catch {
            Log.error("\(spec.name): fork server failed (\(error)); spawning the program instead")
            // A case process the server forked before failing must not run beside the spawned one.
            cgroup.killMembers()
            try cgroup.makeRoomForAgent()
            return nil
        }
        return pid
    }

    /// Lets a prepared shell run: the request's limits on its cgroup (the one it was started in, under
    /// this step's name), then the go. CPU time the shell used before (its start-up, in the snapshot's
    /// template) is not the job's: the adopted cgroup holds it as its baseline.
    private func release(_ shell: PreparedShell, _ spec: StepSpec) throws -> (cgroup: CGroup, started: Int) {
        let cgroup: CGroup
        do {
            cgroup = try shell.cgroup.adopting(.init(memoryBytes: spec.memoryBytes, maxProcesses: spec.maxProcesses))
            if let bytes = spec.maxFileSizeBytes { try FileSizeLimit.set(bytes, of: shell.pid) }
        } catch {
            shell.discard(cgroup: nil, reaper: reaper)
            throw error
        }
        let started = Posix.monotonicMilliseconds()
        do {
            try shell.release()
        } catch {
            shell.discard(cgroup: cgroup, reaper: reaper)
            cgroup.destroy(reaper: reaper)
            throw error
        }
        PhaseTrace.mark("prepared shell")
        return (cgroup, started)
    }

    func run(_ spec: StepSpec) throws -> StepOutcome {
        if let shell = spec.preparedShell, sandbox.confined {
            let (cgroup, started) = try release(shell, spec)
            return collect(spec, pid: shell.pid, stdoutFD: shell.stdout, stderrFD: shell.stderr, cgroup: cgroup, started: started)
        }
        let out = try Posix.makePipe()
        let err: (read: Int32, write: Int32)
        do { err = try Posix.makePipe() } catch {
            close(out.read)
            close(out.write)
            throw error
        }
        var cgroup: CGroup?
        let pid: pid_t
        var started = 0
        do {
            if sandbox.confined {
                cgroup = try CGroup.create(
                    name: spec.name, limits: .init(memoryBytes: spec.memoryBytes, maxProcesses: spec.maxProcesses))
            }
            if let forked = spec.forked, let cgroup, forked.server.usable,
                let forkedPID = try launch(forked, spec, cgroup: cgroup, stdout: out.write, stderr: err.write, started: &started)
            {
                pid = forkedPID
            } else {
                // posix_spawn inherits the working directory; the agent is single-threaded, so borrow it.
                guard chdir(spec.directory) == 0 else { throw AgentError.system("chdir \(spec.directory)") }
                defer { chdir("/") }
                let spawn = {
                    try sandbox.asRunner {
                        try Spawn.start(
                            argv: spec.argv, environment: spec.environment, stdin: spec.stdinFD, stdout: out.write,
                            stderr: err.write, resetIDs: sandbox.confined)
                    }
                }
                started = Posix.monotonicMilliseconds()
                pid = try FileSizeLimit.while(spec.maxFileSizeBytes) { try cgroup.map { try $0.spawnInside(spawn) } ?? spawn() }
            }
        } catch {
            [out.read, out.write, err.read, err.write].forEach { close($0) }
            cgroup?.destroy(reaper: reaper)
            throw error
        }
        PhaseTrace.mark("spawn")
        reaper.watch(pid)
        close(out.write)
        close(err.write)
        return collect(spec, pid: pid, stdoutFD: out.read, stderrFD: err.read, cgroup: cgroup, started: started)
    }

    /// Reads the step's output, enforces its limits until its main process `pid` has exited and its
    /// output is drained, and reads its figures. The step's CPU time counts from the cgroup's
    /// ``CGroup/cpuBaselineMicroseconds``.
    private func collect(
        _ spec: StepSpec, pid: pid_t, stdoutFD: Int32, stderrFD: Int32, cgroup: CGroup?, started: Int
    ) -> StepOutcome {
        let cpuBaseline = cgroup?.cpuBaselineMicroseconds ?? 0
        var stdout = OutputCollector(fd: stdoutFD, limit: spec.maxOutputBytesPerStream)
        var stderr = OutputCollector(fd: stderrFD, limit: spec.maxOutputBytesPerStream)
        var streamer = spec.output.map { OutputStreamer(sink: $0) }
        var exit: ExitRecord?
        var exitedAt = 0
        var timedOut = false
        var cpuTimedOut = false
        var overflow = false
        var killedAt: Int?
        var sampledPeak = 0
        let sampleMemory = cgroup.map { !$0.kernelHasPeakMemory } ?? false
        let deadline = started + spec.wallTimeMilliseconds

        func killJob() {
            if let cgroup { cgroup.killMembers() } else { kill(-pid, SIGKILL) }
            // A forked case joins its cgroup itself: until it has, only its pid reaches it.
            if spec.forked != nil && exit == nil { kill(pid, SIGKILL) }
            if killedAt == nil { killedAt = Posix.monotonicMilliseconds() }
        }

        while true {
            reaper.reap()
            if exit == nil, let record = reaper.takeExit(of: pid) {
                exit = record
                PhaseTrace.mark("run until exit")
                exitedAt = Posix.monotonicMilliseconds()
                // Whatever the program left running in the background dies with it.
                killJob()
            }
            if !overflow && (stdout.truncated || stderr.truncated) {
                overflow = true
                killJob()
            }
            let now = Posix.monotonicMilliseconds()
            if exit == nil && !timedOut && now >= deadline {
                timedOut = true
                killJob()
            }
            if exit == nil && !cpuTimedOut, let cpuLimit = spec.cpuTimeMilliseconds, let used = cgroup?.cpuMicroseconds,
                (used - cpuBaseline) / 1000 >= cpuLimit
            {
                cpuTimedOut = true
                killJob()
            }
            if exit != nil && !stdout.isOpen && !stderr.isOpen { break }
            if let killedAt, now - killedAt > StepRunner.drainGraceMilliseconds {
                if exit != nil { break }
                // The main process ignores SIGKILL for this long only if it is stuck in the kernel: keep trying.
                killJob()
            }
            if sampleMemory, let current = cgroup?.currentMemory { sampledPeak = max(sampledPeak, current) }

            var timeout = exit == nil && !timedOut ? deadline - now : 100
            if sampleMemory { timeout = min(timeout, StepRunner.samplePeriodMilliseconds) }
            if spec.cpuTimeMilliseconds != nil && exit == nil { timeout = min(timeout, StepRunner.cpuPollMilliseconds) }
            if let due = streamer?.millisecondsUntilDue(stdout, stderr, now: now) { timeout = min(timeout, due) }
            var fds = [pollfd(fd: reaper.wakeFD, events: Int16(POLLIN), revents: 0)]
            if stdout.isOpen { fds.append(pollfd(fd: stdout.fd, events: Int16(POLLIN), revents: 0)) }
            if stderr.isOpen { fds.append(pollfd(fd: stderr.fd, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), Int32(max(0, min(timeout, 1000))))
            // One bounded pass each, then back to the checks above: a program that writes as fast as it
            // can must not keep the agent reading past its output limit or its deadline.
            stdout.drain()
            stderr.drain()
            streamer?.flush(&stdout, &stderr, now: Posix.monotonicMilliseconds())
        }
        // The rest before the result, so the chunks of each stream add up to its output.
        streamer?.flush(&stdout, &stderr, now: Posix.monotonicMilliseconds(), force: true)
        stdout.close()
        stderr.close()
        PhaseTrace.mark("drain output")

        let record = exit!
        let outcome = StepOutcome(
            exitCode: record.exitCode, signal: record.signal,
            stdout: stdout.bytes, stderr: stderr.bytes,
            stdoutTruncated: stdout.truncated, stderrTruncated: stderr.truncated,
            timedOut: timedOut, cpuTimedOut: cpuTimedOut, outputOverflow: overflow,
            oomKilled: (cgroup?.oomKills ?? 0) > 0,
            wallTimeMilliseconds: exitedAt - started,
            cpuTimeMilliseconds: cgroup?.cpuMicroseconds.map { max(0, $0 - cpuBaseline) / 1000 } ?? record.cpuMilliseconds,
            peakMemoryBytes: cgroup.map { $0.peakMemory ?? sampledPeak } ?? Int(record.usage.ru_maxrss) * 1024
        )
        PhaseTrace.mark("outcome")
        if let cgroup {
            if let later = spec.cleanUpLater { later { [reaper] in cgroup.destroy(reaper: reaper) } } else { cgroup.destroy(reaper: reaper) }
        }
        return outcome
    }
}
