import Logging

/// The one boot skeleton of both drivers: a VM is restored from a snapshot when the driver keeps
/// snapshots (made on first use), else booted cold, and whatever the VM acquired is released when
/// ``withVM(_:logger:_:)`` returns. A snapshot that cannot be made or restored costs speed, never the
/// job: the VM then boots cold, and a snapshot the VMM refused is removed so the next VM makes a new one.
public struct VMBoot<VMM: BootableVMM>: Sendable {
    /// The driver's side: its VMs, steps and failure reports.
    public let vmm: VMM

    public init(_ vmm: VMM) {
        self.vmm = vmm
    }

    /// ``MicroVMDriver/withVM(_:logger:_:)`` for the driver: brings a VM up, runs `body`, and tears
    /// down the VM whatever happens (the body throws, the boot fails, the task is cancelled).
    public func withVM<T: Sendable>(
        _ vm: VMConfiguration, logger: Logger, usage: (VMUsage) -> Void = { _ in }, _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        // The VM to tear down: a failed restore is torn down at once and replaced by a cold one.
        var live: VMM.VM?
        var spent = VMUsage(vmmCPUTime: .zero)
        let result: Result<T, any Error>
        do {
            let session = try await start(vm, logger: logger, spent: &spent) { live = $0 }
            result = .success(try await body(session))
        } catch {
            result = .failure(error)
        }
        if let live { spent.add(await vmm.tearDown(live)) }
        usage(spent)
        return try result.get()
    }

    /// Restored when possible, else cold; each VM it creates is handed to `track` before its steps
    /// run, and the caller tears down the last one. A failed restore's cost is added to `spent`.
    func start(_ vm: VMConfiguration, logger: Logger, spent: inout VMUsage, track: (VMM.VM) -> Void) async throws -> VMM.Session {
        func bootCold(_ vm: VMConfiguration) async throws -> VMM.Session {
            let cold = vmm.makeVM(vm, purpose: .cold, logger: logger)
            track(cold)
            do throws(Failure) {
                return try await bringUp(cold, .cold)
            } catch {
                throw error.error
            }
        }
        guard let root = vmm.snapshotDirectory(for: vm) else { return try await bootCold(vm) }
        // Resolved once: the snapshot and the VM restoring it must use one image even if
        // image/current is re-pointed meanwhile (the snapshot holds that root filesystem's page cache
        // and, under Firecracker, its drive path).
        let resolved = vm.resolvingSymlinks()
        let store: SnapshotStore
        let snapshot: (key: SnapshotKey, directory: String)
        do {
            store = try SnapshotStore(root: root)
            snapshot = try await self.snapshot(for: resolved, store: store, logger: logger)
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            logger.warning("cannot make a VM snapshot; booting cold", metadata: ["error": "\(error)"])
            return try await bootCold(resolved)
        }
        let restoring = vmm.makeVM(resolved, purpose: .restore(snapshot: snapshot.directory), logger: logger)
        track(restoring)
        do throws(Failure) {
            return try await bringUp(restoring, .restore(snapshot: snapshot.directory))
        } catch {
            if error.error is CancellationError || Task.isCancelled { throw error.error }
            let refused = vmm.snapshotRefused(by: restoring, failure: error.error)
            spent.add(await vmm.tearDown(restoring))
            if refused { store.invalidate(snapshot.key) }
            logger.warning(
                "restoring the VM snapshot failed; booting cold",
                metadata: ["error": "\(error.error)", "step": "\(error.step ?? "-")", "snapshot_removed": "\(refused)"])
            return try await bootCold(resolved)
        }
    }

    /// A failed bring-up: the driver's account of the error, and the step it happened in.
    struct Failure: Error {
        var step: String?
        var error: any Error
    }

    /// Runs `purpose`'s steps on `vm` and hands out its session.
    func bringUp(_ vm: VMM.VM, _ purpose: BootPurpose) async throws(Failure) -> VMM.Session {
        let timings: [BootSteps.Timing]
        do throws(BootStepFailure) {
            timings = try await BootSteps.run(vmm.steps(for: purpose), on: vm)
        } catch {
            throw Failure(step: error.step, error: await vmm.failure(error.error, step: error.step, of: vm))
        }
        let session: VMM.Session
        do {
            session = try vmm.session(of: vm)
        } catch {
            throw Failure(step: nil, error: await vmm.failure(error, step: nil, of: vm))
        }
        let restored = if case .restore = purpose { true } else { false }
        vm.logger.debug(
            restored ? "VM restored from a snapshot" : "VM booted",
            metadata: [
                "boot_ms": "\(BootSteps.milliseconds(session.bootDuration))",
                "steps": "\(timings.map { "\($0.name)=\(BootSteps.milliseconds($0.duration))" }.joined(separator: " "))",
                "agent": "\(session.hello.agentVersion)", "kernel": "\(session.hello.kernel)",
            ])
        return session
    }
}
