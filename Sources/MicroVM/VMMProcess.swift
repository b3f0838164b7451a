import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A VMM child process (QEMU, Firecracker), spawned with `posix_spawn` in its own process group
/// with no blocked and no ignored signals inherited, its stdout and stderr drained continuously into
/// bounded rings, and reaped by a dedicated thread.
///
/// ``kill()`` SIGKILLs the whole process group, and never after the child has been reaped, so a
/// recycled pid is never signalled.
public final class VMMProcess: Sendable {
    /// How the process ended.
    public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : "")"
            }
        }
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<ExitStatus, any Error>
    }

    private struct State {
        var status: ExitStatus?
        var cpuTime: Duration?
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    public let pid: pid_t
    /// What the process printed on stdout (for QEMU: the guest serial console).
    public let stdout: ConsoleRing
    /// What the process printed on stderr (the VMM's own error messages).
    public let stderr: ConsoleRing
    private let state = Mutex(State())
    private let outputChannels: [any Channel]

    private init(pid: pid_t, stdout: ConsoleRing, stderr: ConsoleRing, outputChannels: [any Channel]) {
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.outputChannels = outputChannels
    }

    /// Spawns `executable` with `arguments` (argv[0] excluded). stdin is /dev/null. `stdout` and
    /// `stderr` may be the same ring. `environment` (`NAME=value` entries) replaces ours when given.
    /// `passing` descriptors become the child's 3, 4, ... (every other one of ours is closed in it).
    public static func spawn(
        executable: String,
        arguments: [String],
        environment: [String]? = nil,
        passing descriptors: [Int32] = [],
        stdout: ConsoleRing,
        stderr: ConsoleRing,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> VMMProcess {
        guard access(executable, X_OK) == 0 else {
            throw VMError(.vmmUnavailable, "\(executable) is not an executable file: \(String(cString: strerror(errno)))")
        }
        let outPipe = try makePipe()
        let errPipe = try makePipe()
        // The child's dup2 actions run in order: a descriptor numbered like an earlier target
        // (our 3 passed as the child's 4) would be overwritten before it is copied. Copies above
        // every target cannot be.
        let lowestFree = 3 + Int32(descriptors.count)
        let moved = descriptors.map { $0 < lowestFree ? fcntl($0, F_DUPFD_CLOEXEC, lowestFree) : $0 }
        defer { for (fd, original) in zip(moved, descriptors) where fd != original && fd >= 0 { close(fd) } }
        guard !moved.contains(where: { $0 < 0 }) else {
            close(outPipe.read)
            close(outPipe.write)
            close(errPipe.read)
            close(errPipe.write)
            throw VMError(.vmmUnavailable, "cannot duplicate a descriptor for \(executable): \(String(cString: strerror(errno)))")
        }
        var pid: pid_t = 0
        var spawnResult: Int32 = 0
        // ETXTBSY: another thread of this process forked while holding the executable open for
        // writing (an install or upgrade in progress); it clears when that child execs.
        for attempt in 0..<20 {
            // On the one thread that never exits: a parent-death signal must mean the worker's death.
            (spawnResult, pid) = try await SpawnerThread.shared.run {
                var pid: pid_t = 0
                let result = spawnChild(
                    executable: executable, arguments: arguments, environment: environment, descriptors: moved,
                    stdoutFD: outPipe.write, stderrFD: errPipe.write, pid: &pid)
                return (result, pid)
            }
            guard spawnResult == ETXTBSY, attempt < 19 else { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        close(outPipe.write)
        close(errPipe.write)
        guard spawnResult == 0 else {
            close(outPipe.read)
            close(errPipe.read)
            throw VMError(.vmmUnavailable, "posix_spawn \(executable) failed: \(String(cString: strerror(spawnResult)))")
        }

        var channels: [any Channel] = []
        var drainError: (any Error)?
        for (fd, ring) in [(outPipe.read, stdout), (errPipe.read, stderr)] {
            if drainError != nil {
                close(fd)
                continue
            }
            do {
                let channel = try await NIOPipeBootstrap(group: eventLoopGroup)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(RingDrain(ring: ring))
                        }
                    }
                    .takingOwnershipOfDescriptor(input: fd).get()
                channels.append(channel)
            } catch {
                close(fd)
                drainError = error
            }
        }
        let process = VMMProcess(pid: pid, stdout: stdout, stderr: stderr, outputChannels: channels)
        do {
            try startDetachedThread { process.reap() }
        } catch {
            // Without a reaper we cannot wait for it: kill and reap synchronously.
            _ = Glibc.kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            for channel in channels { try? await channel.close() }
            throw error
        }
        if let drainError {
            process.kill()
            _ = await process.waitForExitIgnoringCancellation()
            await process.closeOutputs()
            throw VMError(.vmmUnavailable, "cannot read the output of \(executable): \(drainError)")
        }
        return process
    }

    /// The exit status if the process has ended and been reaped.
    public var exitStatus: ExitStatus? { state.withLock { $0.status } }

    /// Host CPU time (user and system) the process used, counting the descendants it reaped: for a
    /// jailed QEMU, its launcher, QEMU and the guest it emulated. Nil until the process is reaped.
    public var cpuTime: Duration? { state.withLock { $0.cpuTime } }

    /// SIGKILLs the process group, unless the process has already been reaped.
    public func kill() {
        state.withLock { state in
            // Holding the lock excludes the reaper, so the pid cannot be recycled under us.
            guard state.status == nil else { return }
            _ = Glibc.kill(-pid, SIGKILL)
            _ = Glibc.kill(pid, SIGKILL)
        }
    }

    /// Waits until the process has ended; throws `CancellationError` if the task is cancelled first.
    public func waitForExit() async throws -> ExitStatus {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let immediate: Result<ExitStatus, any Error>? = state.withLock { state in
                    if let status = state.status { return .success(status) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Waits until the process has ended, even in a cancelled task (teardown must finish).
    public func waitForExitIgnoringCancellation() async -> ExitStatus {
        // An unstructured task does not inherit the caller's cancellation.
        await Task { try? await self.waitForExit() }.value ?? .signaled(SIGKILL)
    }

    /// Waits (bounded) for the output pipes to reach EOF, without closing them: once the process has
    /// ended, the rings then hold its last words even when the drains run behind on a loaded host.
    public func waitForOutputEOF(within grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while outputChannels.contains(where: \.isActive), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits (bounded) for the output pipes to reach EOF so the rings hold the last words, then closes them.
    public func closeOutputs(grace: Duration = .milliseconds(200)) async {
        for channel in outputChannels {
            let closed = channel.closeFuture
            let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(grace.components.seconds * 1000 + grace.components.attoseconds / 1_000_000_000_000_000))) {
                channel.close(promise: nil)
            }
            try? await closed.get()
            timer.cancel()
        }
    }

    private func reap() {
        var info = siginfo_t()
        // WNOWAIT: observe the exit but leave the zombie, so the pid stays ours until we hold the lock.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            if errno != EINTR { break }
        }
        let waiters: [Waiter] = state.withLock { state in
            var raw: Int32 = 0
            var usage = rusage()
            var result: pid_t
            repeat { result = wait4(pid, &raw, 0, &usage) } while result < 0 && errno == EINTR
            let status: ExitStatus = (raw & 0x7f) == 0 ? .exited((raw >> 8) & 0xff) : .signaled(raw & 0x7f)
            state.status = status
            if result == pid { state.cpuTime = Self.cpuTime(usage) }
            defer { state.waiters = [] }
            return state.waiters
        }
        let status = exitStatus ?? .signaled(SIGKILL)
        for waiter in waiters { waiter.continuation.resume(returning: status) }
    }

    /// User plus system time of a reaped process and of every descendant it reaped in turn (Linux
    /// counts those into the rusage `wait4` returns).
    package static func cpuTime(_ usage: rusage) -> Duration {
        func duration(_ time: timeval) -> Duration { .seconds(Int64(time.tv_sec)) + .microseconds(Int64(time.tv_usec)) }
        return duration(usage.ru_utime) + duration(usage.ru_stime)
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw VMError(.vmmUnavailable, "pipe failed: \(String(cString: strerror(errno)))")
        }
        // pipe2 is not exported to Swift; a concurrent spawn elsewhere could inherit these fds in the
        // window before FD_CLOEXEC, which would only delay EOF on the drain, never leak the VM.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    private static func spawnChild(
        executable: String, arguments: [String], environment: [String]?, descriptors: [Int32], stdoutFD: Int32, stderrFD: Int32,
        pid: inout pid_t
    ) -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        // Ignored signals survive exec; reset every catchable one so the VMM dies on SIGTERM/SIGPIPE as usual.
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
        // glibc's dup2 action onto the same number clears close-on-exec, as wanted here.
        for (index, fd) in descriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }
        // Only stdin/stdout/stderr and those passed: any other descriptor of ours (a Redis connection,
        // another VM's pipe, a test's redis-cli pipe caught between its pipe() and exec) must not live on in the VMM.
        addCloseFrom(&actions, lowest: 3 + Int32(descriptors.count))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        return argv.withUnsafeBufferPointer { argvBuffer in
            guard let envp else {
                return posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, environ)
            }
            return envp.withUnsafeBufferPointer { envBuffer in
                posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
            }
        }
    }
}

/// Copies everything read from a pipe into a ring.
private final class RingDrain: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let ring: ConsoleRing

    init(ring: ConsoleRing) { self.ring = ring }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { ring.append($0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // EOF on the pipe: the VMM (and anything that inherited the pipe) has gone.
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
