#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MicroVM
import NIOCore
import Synchronization

/// A child process started with `posix_spawn` as the leader of its own process group, with its
/// stdout and stderr drained into one bounded ring.
///
/// Own process group: the VMM may fork (the jailer clones Firecracker into a new PID namespace and
/// exits), and one `kill(-pgid, SIGKILL)` must reach all of it. Signal mask cleared and dispositions
/// reset: a child inherits both, and a VMM that cannot see SIGTERM/SIGPIPE misbehaves.
final class SpawnedProcess: Sendable {
    let pid: pid_t
    let output: ConsoleRing
    private let drain: any Channel
    private let exitStatus = Mutex<CInt?>(nil)

    private init(pid: pid_t, output: ConsoleRing, drain: any Channel) {
        self.pid = pid
        self.output = output
        self.drain = drain
    }

    /// Starts `executable` with `arguments` (argv[0] is added). `environment` replaces the parent's.
    static func spawn(
        executable: String, arguments: [String], environment: [String] = [],
        outputCapacity: Int, group: any EventLoopGroup
    ) async throws(SpawnError) -> SpawnedProcess {
        var fds: [CInt] = [-1, -1]
        // pipe2 is not exported to Swift by Glibc; set close-on-exec at once so a concurrent spawn
        // elsewhere in the process does not inherit the write end (it would delay our EOF).
        guard pipe(&fds) == 0 else { throw SpawnError("pipe", errno) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        // Only stdin/stdout/stderr: any other descriptor of ours (a Redis connection, another VM's
        // pipe, a test's redis-cli pipe caught between its pipe() and exec) must not live on in the VMM.
        addCloseFrom(&actions, lowest: 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = [executable] + arguments
        var pid: pid_t = 0
        var result: CInt = 0
        // ETXTBSY: another thread of this process forked while holding the executable open for
        // writing (an install or upgrade in progress); it clears when that child execs.
        for attempt in 0..<20 {
            result = withCStrings(argv) { argvPointers in
                withCStrings(environment) { envPointers in
                    posix_spawn(&pid, executable, &actions, &attributes, argvPointers, envPointers)
                }
            }
            guard result == ETXTBSY, attempt < 19 else { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        close(writeEnd)
        guard result == 0 else {
            close(readEnd)
            throw SpawnError("posix_spawn \(executable)", result)
        }

        let ring = ConsoleRing(capacity: outputCapacity)
        let drain: any Channel
        do {
            drain = try await PipeDrain.start(fd: readEnd, into: ring, group: group)
        } catch {
            close(readEnd)
            kill(-pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
            throw SpawnError("draining the output of \(executable): \(error)", 0)
        }
        return SpawnedProcess(pid: pid, output: ring, drain: drain)
    }

    /// The wait status once the process has exited (reaped); nil while it runs. Never blocks.
    func poll() -> CInt? {
        exitStatus.withLock { stored in
            if let stored { return stored }
            var status: CInt = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                stored = status
                return status
            }
            if reaped < 0 && errno == ECHILD {
                // Reaped by someone else (should not happen): treat as gone.
                stored = 0
                return 0
            }
            return nil
        }
    }

    /// SIGKILLs the whole process group, reaps the leader and stops draining. Idempotent.
    func terminate() async {
        kill(-pid, SIGKILL)
        if poll() == nil { kill(pid, SIGKILL) }
        // SIGKILL cannot be caught; the leader is normally reaped on the first or second look. A
        // cancelled task's sleeps return at once, so then wait by blocking briefly instead.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)  // a process in D state must not hang teardown forever
        while poll() == nil && clock.now < deadline {
            if Task.isCancelled {
                usleep(1000)
            } else {
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        try? await drain.close()
    }

    /// Waits (polling) until the drain has read everything the process wrote, briefly: used to put
    /// the last words of a VMM that died into the error.
    func settleOutput() async {
        var polls = 0
        while drain.isActive, polls < 25 {
            try? await Task.sleep(for: .milliseconds(4))
            polls += 1
        }
    }
}

/// `posix_spawn` or its setup failed.
struct SpawnError: Error, Sendable, CustomStringConvertible {
    var operation: String
    var errnoValue: CInt

    init(_ operation: String, _ errnoValue: CInt) {
        self.operation = operation
        self.errnoValue = errnoValue
    }

    var description: String {
        errnoValue == 0 ? operation : "\(operation): \(String(cString: strerror(errnoValue)))"
    }
}

/// Describes a wait status for a person: `exited with status 1`, `killed by signal 9`.
func describeWaitStatus(_ status: CInt) -> String {
    let signal = status & 0x7f
    if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
    return "killed by signal \(signal)"
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
