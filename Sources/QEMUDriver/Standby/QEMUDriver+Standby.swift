import Logging
import MicroVM

extension QEMUDriver: VMMStandbyDriver {
    /// Keeps ``Configuration/standbyVMMs`` QEMUs spawned ahead of copy-on-write restores until the
    /// calling task is cancelled, then destroys them (``QEMUStandbyPool``). Returns at once when the
    /// driver keeps none.
    public func runStandby() async {
        await standby?.run()
    }

    /// The VMM processes of the standbys parked now (QEMU, or a jailed QEMU's launcher): processes of
    /// the driver that belong to no VM yet.
    public var standbyProcessIDs: [Int32] { standby?.parkedProcessIDs ?? [] }

    /// The `take standby VMM` boot step: the VM becomes a parked QEMU spawned for its shape and
    /// snapshot when there is one, and another is spawned in the background for the next VM.
    func adoptStandby(_ vm: QEMUVM, snapshot: String) async {
        guard let standby else { return }
        let key = QEMUStandbyPool.Key(vm: vm.configuration, snapshot: snapshot)
        let identity = readSmallFile(snapshot + "/" + QEMUTemplateMemory.identityFileName)
        let (taken, stale) = standby.take(key, identity: identity)
        for parked in stale { await parked.resources.destroy(logger: vm.logger) }
        standby.refill(key) { try await self.spawnStandby(key) }
        guard let taken else { return }
        taken.resources.cgroup?.setCPUWeight(.normal)
        vm.resources = taken.resources
        vm.agentSocketPath = taken.agentSocketPath
        vm.snapshotIdentity = taken.snapshotIdentity
        vm.adoptedStandby = true
        // The VM's boot counts from here: the time its caller waited for it.
        vm.spawnedAt = vm.clock.now
        vm.logger[metadataKey: "runtime_dir"] = "\(taken.resources.runtimeDirectory?.path ?? "-")"
        if let pid = taken.resources.process?.pid { vm.logger[metadataKey: "vmm_pid"] = "\(pid)" }
        if let uid = taken.resources.jailUID { vm.logger[metadataKey: "vmm_uid"] = "\(uid)" }
        if let cgroup = taken.resources.cgroup { vm.logger[metadataKey: "cgroup"] = "\(cgroup.memoryDirectory)" }
    }

    /// A QEMU for `key` spawned the way its VM's own steps would spawn it, stopped before its state.
    private func spawnStandby(_ key: QEMUStandbyPool.Key) async throws -> QEMUStandbyPool.Parked {
        let vm = QEMUVM(configuration: key.vm, logger: standby?.logger ?? Logger(label: "codebench.qemu.standby"))
        // It starts while VMs run jobs: it yields the CPU to them until it is adopted.
        vm.spawnsStandby = true
        do {
            try prepareRuntimeDirectory(vm)
            try await spawn(vm, purpose: .restore(snapshot: key.snapshot))
            guard let identity = vm.snapshotIdentity else { throw VMError(.bootFailed, "the standby opened no snapshot") }
            vm.logger.debug("standby QEMU spawned")
            return QEMUStandbyPool.Parked(key: key, resources: vm.resources, agentSocketPath: vm.agentSocketPath, snapshotIdentity: identity)
        } catch {
            await vm.resources.destroy(logger: vm.logger)
            throw error
        }
    }
}
