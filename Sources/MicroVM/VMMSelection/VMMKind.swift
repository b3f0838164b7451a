/// The VMMs a worker can boot job VMs with, in the order `vmm=auto` prefers them: what
/// ``VMMSelection`` decides.
public enum VMMKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Firecracker on KVM: the production VMM.
    case firecracker
    /// QEMU microvm with KVM.
    case qemuKVM = "qemu-kvm"
    /// QEMU microvm under TCG (software emulation): slow, but runs anywhere.
    case qemuTCG = "qemu-tcg"

    public var description: String { rawValue }
}

/// The worker's `vmm` setting: which VMMs ``VMMSelection`` may choose from.
public enum VMMChoice: String, Sendable, Hashable, CaseIterable {
    /// QEMU, with KVM or TCG as `qemu-accelerator` says.
    case qemu
    /// Firecracker, or no start at all.
    case firecracker
    /// Firecracker when usable, else QEMU with KVM when its probe passes, else QEMU with TCG.
    case auto
}

/// The worker's `qemu-accelerator` setting: which accelerators QEMU may use.
public enum QEMUAcceleratorChoice: String, Sendable, Hashable, CaseIterable {
    /// KVM when a probe boot under KVM passes, else TCG.
    case auto
    /// KVM without a probe.
    case kvm
    /// TCG only: skips the KVM probe, which costs its timeout where KVM is present but unusable.
    case tcg
}
