import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// What one VM has acquired so far. Boot fills it step by step; ``destroy(logger:)`` releases
/// whatever is there, in every outcome (success, error, task cancellation).
struct VMResources: Sendable {
    var runtimeDirectory: RuntimeDirectory?
    var process: VMMProcess?
    var connection: AgentConnection?
    /// The jailed QEMU's uid, returned to its pool once QEMU is dead.
    var jailUID: UInt32?
    var uidPool: UIDPool?
    var cgroup: QEMUCgroup?
    /// A jailed network VM's registration with the egress proxy.
    var egress: (host: EgressProxyHost, name: String)?
    /// Descriptors closed with the VM: a copy-on-write template's memfd, until it is persisted.
    var heldDescriptors: [CInt] = []

    /// Takes `fd` out of ``heldDescriptors``: its new owner closes it.
    mutating func release(_ fd: CInt) {
        heldDescriptors.removeAll { $0 == fd }
    }

    /// SIGKILLs QEMU's process group, reaps it, closes the channel, and removes the runtime directory.
    /// Nothing here observes cancellation: teardown always completes. Returns the host CPU time of
    /// QEMU (with its launcher and guest) when it was reaped.
    ///
    /// QEMU dies before its channel closes: closing first would wake the guest (its port's host side
    /// hung up) and have it log that through the emulated UART, QEMU CPU time spent on a VM whose
    /// result is already in.
    @discardableResult
    func destroy(logger: Logger) async -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        var status: VMMProcess.ExitStatus?
        if let process {
            if jailUID != nil { await Self.killNamespaceInit(of: process) }
            process.kill()
            status = await process.waitForExitIgnoringCancellation()
        }
        if let connection { await connection.close() }
        if let egress { egress.host.unregister(vm: egress.name) }
        if let process { await process.closeOutputs() }
        runtimeDirectory?.remove()
        for fd in heldDescriptors { close(fd) }
        let throttled = cgroup?.throttledMilliseconds
        // Only now: the process group is dead, so no process of this uid is left to share it.
        if let jailUID, let uidPool { uidPool.release(jailUID) }
        cgroup?.remove()
        logger.debug(
            "VM destroyed",
            metadata: [
                "vmm_pid": "\(process.map { "\($0.pid)" } ?? "-")",
                "vmm_status": "\(status.map { "\($0)" } ?? "-")",
                "ms": "\(BootSteps.milliseconds(clock.now - start))",
                "cpu_throttled_ms": "\(throttled.map(String.init) ?? "-")",
                "vmm_cpu_ms": "\(process?.cpuTime.map { "\(BootSteps.milliseconds($0))" } ?? "-")",
            ])
        return process?.cpuTime
    }

    /// A jailed QEMU is PID 1 of its own PID namespace and the only child of its launcher
    /// (`codebench-jail`), which reaps it and then exits with its status. Killed together (the process
    /// group), the launcher dies first and QEMU is left to the host's init, which may take seconds to reap it:
    /// a zombie per VM meanwhile. So QEMU goes first, and the launcher's own exit is awaited briefly.
    /// The child is checked to be a QEMU whose parent is the launcher just before the signal.
    private static func killNamespaceInit(of launcher: VMMProcess) async {
        let pid = launcher.pid
        guard launcher.exitStatus == nil,
            let children = readSmallFile("/proc/\(pid)/task/\(pid)/children")?.split(whereSeparator: \.isWhitespace).compactMap({ pid_t($0) }),
            children.count == 1, let child = children.first,
            let stat = ProcessStat.of(pid: child), stat.name.hasPrefix("qemu-system"), stat.parent == pid
        else { return }
        _ = Glibc.kill(child, SIGKILL)
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(500)
        while launcher.exitStatus == nil, clock.now < deadline {
            // A cancelled task's sleep returns at once: teardown still waits, without spinning.
            if (try? await Task.sleep(for: .milliseconds(2))) == nil { usleep(2000) }
        }
    }

    /// The exit status of QEMU if it has ended, waiting up to `grace` for the reaper: when the agent
    /// channel hits EOF because QEMU died, the reap follows a moment later. Once it has ended, its
    /// output is read to the end (bounded) so that ``vmmMessage`` holds its last words.
    func vmmExitStatus(grace: Duration = .milliseconds(300)) async -> VMMProcess.ExitStatus? {
        guard let process else { return nil }
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        var status = process.exitStatus
        while status == nil, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
            status = process.exitStatus
        }
        if status != nil { await process.waitForOutputEOF(within: .milliseconds(500)) }
        return status
    }

    /// QEMU's own last words (its stderr), trimmed, for error messages.
    var vmmMessage: String {
        guard let process else { return "" }
        let message = process.stderr.tail(maxBytes: 2048).trimming(" \n\r\t")
        guard let reason = cgroup?.oomReason else { return message }
        return message.isEmpty ? reason : reason + "; " + message
    }

    /// The end of the guest console, for error reports.
    var consoleTail: String? {
        guard let process else { return nil }
        let tail = process.stdout.tail(maxBytes: 8192)
        return tail.isEmpty ? nil : tail
    }

    /// Turns a boot failure into a ``VMError`` that says whether QEMU died and carries its stderr and
    /// the console tail. Cancellation passes through unchanged.
    func bootFailure(_ error: any Error) async -> any Error {
        if error is CancellationError { return error }
        let status = await vmmExitStatus(grace: process == nil ? .zero : .milliseconds(100))
        let message = vmmMessage
        let detail = message.isEmpty ? "" : "; QEMU said: \(message)"
        if let status {
            let cause = (error as? VMError)?.message ?? "\(error)"
            return VMError(.bootFailed, "QEMU exited during boot (\(status))\(detail) [\(cause)]", consoleTail: consoleTail)
        }
        if var vmError = error as? VMError {
            vmError.message += detail
            vmError.consoleTail = vmError.consoleTail ?? consoleTail
            return vmError
        }
        return VMError(.bootFailed, "\(error)\(detail)", consoleTail: consoleTail)
    }
}
