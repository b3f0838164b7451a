import QEMUDriver

extension WorkerConfiguration {
    /// The memory the host keeps for itself.
    static let hostReserveBytes = 1 << 30
    /// What a VM costs on top of its guest memory when nothing bounds its VMM (VMM code and heap,
    /// page tables, console).
    static let perVMOverheadBytes = 128 << 20

    /// min(cores, (memory - 1 GiB) / `perVMBytes`), at least 1.
    public static func defaultConcurrency(cores: Int, memoryBytes: Int, perVMBytes: Int) -> Int {
        let byMemory = max(0, memoryBytes - hostReserveBytes) / max(perVMBytes, 1)
        return max(1, min(cores, byMemory))
    }

    /// min(cores, (memory - 1 GiB) / (VM memory + 128 MiB)), at least 1: the default for VMMs no cgroup bounds.
    public static func defaultConcurrency(cores: Int, memoryBytes: Int, vmMemoryMiB: Int) -> Int {
        defaultConcurrency(cores: cores, memoryBytes: memoryBytes, perVMBytes: vmMemoryMiB << 20 + perVMOverheadBytes)
    }

    /// What one VM may cost the host, the divisor of the default concurrency. With `qemu-jail=on`
    /// and QEMU possible, the memory limit of its QEMU's cgroup, as the driver sets it
    /// (``QEMUDriver/Configuration/vmMemoryLimitBytes(guestMemoryMiB:)``: guest memory + translation
    /// cache under TCG + QEMU's overhead), for TCG unless `qemu-accelerator=kvm`: the accelerator is
    /// chosen after this, and TCG's figure is the larger. Otherwise guest memory + 128 MiB.
    public var perVMMemoryBytes: Int {
        let unbounded = vmMemoryMiB << 20 + Self.perVMOverheadBytes
        guard vmm != .firecracker else { return unbounded }
        let accelerator: QEMUDriver.Accelerator = qemuAccelerator == .kvm ? .kvm : .tcg
        return DriverSelection.qemuConfiguration(accelerator, self).vmMemoryLimitBytes(guestMemoryMiB: vmMemoryMiB) ?? unbounded
    }

    /// What the worker holds for its QEMU VMs besides each VM's own memory, taken off the host's
    /// memory before dividing it: with copy-on-write restores, the snapshot's sealed template memory
    /// (a memfd of the guest's size, allocated in full, one per worker process); and each standby
    /// QEMU, which holds no guest yet, at QEMU's overhead.
    public var sharedVMMemoryBytes: Int {
        guard vmm != .firecracker, snapshots, qemuRestore == .copyOnWrite else { return 0 }
        return (vmMemoryMiB + qemuStandby * QEMUCgroupLimits().overheadMiB) << 20
    }

    /// ``concurrency`` when set, else the default for this host.
    public var effectiveConcurrency: Int {
        concurrency
            ?? Self.defaultConcurrency(
                cores: HostResources.current.cores, memoryBytes: HostResources.current.memoryBytes - sharedVMMemoryBytes,
                perVMBytes: perVMMemoryBytes)
    }

    /// What the worker logs at every start and `/readyz` adds to `ready` while QEMU runs unjailed;
    /// nil with `qemu-jail=on`.
    public var qemuJailWarning: String? {
        qemuJail ? nil : "qemu-jail=off: QEMU runs unjailed as root"
    }
}
