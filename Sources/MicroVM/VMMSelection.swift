/// The VMMs a worker can boot job VMs with, in the order `--vmm auto` prefers them.
public enum VMMKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Firecracker on KVM: the production VMM.
    case firecracker
    /// QEMU microvm with KVM.
    case qemuKVM = "qemu-kvm"
    /// QEMU microvm under TCG (software emulation): slow, but runs anywhere.
    case qemuTCG = "qemu-tcg"

    public var description: String { rawValue }
}

/// Whether one VMM can run VMs on this host, and exactly why (for `doctor` and startup logs).
public struct VMMProbeResult: Sendable, Hashable, CustomStringConvertible {
    public var kind: VMMKind
    public var usable: Bool
    /// For a person: what was checked and what failed, in the VMM's own words where there are some.
    public var reason: String

    public init(kind: VMMKind, usable: Bool, reason: String) {
        self.kind = kind
        self.usable = usable
        self.reason = reason
    }

    public var description: String { "\(kind): \(usable ? "usable" : "unusable") (\(reason))" }
}

/// Picks a VMM from probe results. Pure: probing is the caller's job.
public enum VMMSelection {
    /// Firecracker first (isolation and boot time), then QEMU with KVM, then QEMU under TCG.
    public static let preference: [VMMKind] = [.firecracker, .qemuKVM, .qemuTCG]

    /// `--vmm auto`: the first usable VMM in ``preference`` order. A VMM without a probe result is
    /// not considered. Throws `vmmUnavailable` listing every reason when none is usable.
    public static func auto(_ probes: [VMMProbeResult]) throws(VMError) -> VMMKind {
        for kind in preference {
            if let probe = probes.first(where: { $0.kind == kind }), probe.usable { return kind }
        }
        throw noneUsable(probes)
    }

    /// An explicit choice: `kind` if its probe says usable, else why not.
    public static func require(_ kind: VMMKind, from probes: [VMMProbeResult]) throws(VMError) -> VMMKind {
        guard let probe = probes.first(where: { $0.kind == kind }) else {
            throw VMError(.vmmUnavailable, "\(kind) was not probed")
        }
        guard probe.usable else { throw VMError(.vmmUnavailable, "\(kind) is not usable: \(probe.reason)") }
        return kind
    }

    private static func noneUsable(_ probes: [VMMProbeResult]) -> VMError {
        let reasons = preference.map { kind in
            "\(kind): " + (probes.first { $0.kind == kind }.map(\.reason) ?? "not probed")
        }
        return VMError(.vmmUnavailable, "no usable VMM on this host; " + reasons.joined(separator: "; "))
    }
}
