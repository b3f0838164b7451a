import FoundationEssentials
import Glibc

/// The next shell job's `bash -c`, started ahead of its request and waiting for its command
/// (``RunRequest/prepareNextRequest``; docs/snapshots.md, "The job inside the guest").
///
/// Why: in a VM just restored from a snapshot, spawning bash and bash's start-up are ~125 ms of a
/// `true` job's ~150, nearly all of it QEMU translating code it has never run in this process. A
/// shell started in the snapshot's template has done all that before the snapshot: every clone has
/// its own copy of it, blocked in a read, and only the command's own code is left to run.
///
/// It is the same bash the request would have spawned, started the same way (``Spawn``: the runner's
/// IDs, no capabilities, its own session, the step's cgroup, the work directory, the job's
/// environment and `$0`), with a fixed script instead of the command: it closes fd 5 (the agent then
/// knows its start-up is over, ``waitUntilWaiting(pid:readiness:)``), waits for a byte on fd 4,
/// reads the command and its arguments from fd 3, closes both, sets `$@` and
/// `BASH_EXECUTION_STRING`, and `eval`s the command. `eval` and `-c` run their string through the
/// same bash function, so the command runs as under `bash -c`; what differs is the wording of a
/// syntax error (`bash: syntax error: …` instead of `bash: -c: line 1: syntax error: …`). Its
/// variables are unset by the evaluated string itself, before the command's first word.
///
/// Standard input is a file written when the request comes, as for a spawned step; so are the
/// command and arguments (a seekable file: bash reads a pipe one byte at a time). Both are unlinked
/// files the shell holds read-only descriptors of.
final class PreparedShell {
    let pid: pid_t
    /// Read ends of the shell's stdout and stderr; the step that releases the shell collects them.
    let stdout: Int32
    let stderr: Int32
    /// The cgroup it was started in, with the limits it was made with (a step adopts it: ``CGroup/adopting(_:)``).
    let cgroup: CGroup
    private var stdinFile: Int32
    private var messageFile: Int32
    private var go: Int32

    /// The script `bash -c` runs: one line, so that the command's `LINENO` counts from 1.
    static let script = #"exec 5>&-; IFS= read -r -n 1 -u 4 __codebench_go || exit 125; IFS= read -r -d '' -u 3 __codebench_command; __codebench_arguments=(); while IFS= read -r -d '' -u 3 __codebench_argument; do __codebench_arguments+=("$__codebench_argument"); done; exec 3<&- 4<&-; set -- "${__codebench_arguments[@]}"; BASH_EXECUTION_STRING=$__codebench_command; eval "unset __codebench_go __codebench_command __codebench_arguments __codebench_argument; $__codebench_command""#

    private init(pid: pid_t, stdout: Int32, stderr: Int32, cgroup: CGroup, stdinFile: Int32, messageFile: Int32, go: Int32) {
        self.pid = pid
        self.cgroup = cgroup
        self.stdout = stdout
        self.stderr = stderr
        self.stdinFile = stdinFile
        self.messageFile = messageFile
        self.go = go
    }

    /// Starts `shell` as the runner in `cgroup` and `directory`, waiting for ``release()``.
    static func start(
        shell: String, environment: [String], directory: String, cgroup: CGroup, sandbox: Sandbox, reaper: ChildReaper, label: String
    ) throws -> PreparedShell {
        var opened: [Int32] = []
        func keep(_ fd: Int32) -> Int32 {
            opened.append(fd)
            return fd
        }
        do {
            let (stdinWriter, stdinReader) = try Posix.unlinkedFile("\(label)-stdin")
            let (messageWriter, messageReader) = try Posix.unlinkedFile("\(label)-command")
            [stdinWriter, stdinReader, messageWriter, messageReader].forEach { _ = keep($0) }
            let out = try Posix.makePipe()
            _ = keep(out.read); _ = keep(out.write)
            let err = try Posix.makePipe()
            _ = keep(err.read); _ = keep(err.write)
            let goPipe = try Posix.makePipe()
            _ = keep(goPipe.read); _ = keep(goPipe.write)
            let readiness = try Posix.makePipe()
            _ = keep(readiness.read); _ = keep(readiness.write)

            guard chdir(directory) == 0 else { throw AgentError.system("chdir \(directory)") }
            defer { chdir("/") }
            let pid = try cgroup.spawnInside {
                try sandbox.asRunner {
                    try Spawn.start(
                        argv: [shell, "-c", script, "bash"], environment: environment, stdin: stdinReader, stdout: out.write,
                        stderr: err.write, resetIDs: true, passing: [messageReader, goPipe.read, readiness.write])
                }
            }
            reaper.watch(pid)
            // The shell's ends are its own now.
            [stdinReader, messageReader, out.write, err.write, goPipe.read, readiness.write].forEach { close($0) }
            waitUntilWaiting(pid: pid, readiness: readiness.read)
            close(readiness.read)
            return PreparedShell(
                pid: pid, stdout: out.read, stderr: err.read, cgroup: cgroup, stdinFile: stdinWriter, messageFile: messageWriter, go: goPipe.write)
        } catch {
            opened.forEach { close($0) }
            throw error
        }
    }

    /// Returns once the shell has closed fd 5 and then sleeps in its `read` of fd 4 (state `S` in
    /// /proc), or after 2 s. Why: a template is saved as soon as the request that prepared the shell is
    /// answered, and a copy-on-write save takes milliseconds. A shell caught in its start-up (static
    /// glibc's set-up, bash's `mmap`s, `getpw*`, `sysinfo`, its first page faults) finishes it in every
    /// clone, under TCG, in the middle of the clone's job: measured as 46 % more guest code translated
    /// per restored VM (docs/snapshots.md, "The job inside the guest"). A shell that dies or never gets
    /// there costs only that wait: the step that releases it sees what became of it.
    private static func waitUntilWaiting(pid: pid_t, readiness: Int32) {
        let deadline = Posix.monotonicMilliseconds() + 2000
        var byte: UInt8 = 0
        var descriptor = pollfd(fd: readiness, events: Int16(POLLIN), revents: 0)
        // EOF: every copy of the write end is closed, the shell's by its script's first command.
        while Posix.monotonicMilliseconds() < deadline {
            let ready = poll(&descriptor, 1, Int32(max(1, deadline - Posix.monotonicMilliseconds())))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 || read(readiness, &byte, 1) <= 0 { break }
        }
        switch Posix.waitUntilSleeping(pid, deadline: deadline) {
        case .sleeping: PhaseTrace.mark("next shell waiting")
        case .gone: break
        case .timedOut: Log.error("the next request's shell was not waiting for its command after 2 s")
        }
    }

    /// Writes the request's command, arguments and standard input where the shell will read them.
    /// An empty stdin is not written at all: the file is there, empty, as the shell's stdin either way.
    func load(command: String, arguments: [String], stdin: Data) throws {
        // Arguments cannot hold NUL (C strings), as with a spawned `bash -c`: they end at the first.
        // A plain loop: the generic flatMap and prefix(while:) it replaced were code a VM just
        // restored had TCG translate for a `true`.
        var message: [UInt8] = []
        for text in [command] + arguments {
            for byte in text.utf8 {
                if byte == 0 { break }
                message.append(byte)
            }
            message.append(0)
        }
        // The agent's descriptors were never written: they start at offset 0, as the shell's do.
        try Posix.writeAll(messageFile, message)
        if !stdin.isEmpty { try Posix.writeAll(stdinFile, [UInt8](stdin)) }
        close(messageFile)
        close(stdinFile)
        messageFile = -1
        stdinFile = -1
    }

    /// Lets the shell run the command; from now on it is the step's main process.
    func release() throws {
        var byte: UInt8 = 0x67
        let written = write(go, &byte, 1)
        close(go)
        go = -1
        guard written == 1 else { throw AgentError.system("write to the prepared shell") }
    }

    /// Kills the shell (a request it cannot serve) and waits until it is reaped, so that its cgroup is
    /// empty for the request's own steps.
    func discard(cgroup: CGroup?, reaper: ChildReaper) {
        if let cgroup { cgroup.killMembers() }
        kill(pid, SIGKILL)
        let deadline = Posix.monotonicMilliseconds() + 2000
        while reaper.takeExit(of: pid) == nil && Posix.monotonicMilliseconds() < deadline {
            reaper.reap()
            Posix.sleep(milliseconds: 1)
        }
        closeAll()
    }

    /// Closes the agent's ends that are still open (the output pipes belong to a released shell's step).
    func closeAll() {
        for fd in [stdout, stderr, stdinFile, messageFile, go] where fd >= 0 { close(fd) }
        stdinFile = -1
        messageFile = -1
        go = -1
    }
}
