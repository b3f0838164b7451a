/// The one place that decides which VMM boots job VMs, for the worker's start (`run`), `vm run` and
/// `doctor` alike: which VMMs the `vmm` and `qemu-accelerator` settings let it consider, which of
/// them must pass a probe, and the pick. Probing is the drivers' (each knows how to check and boot
/// its own VMM) and is handed in, so the decision stays pure and testable without a VMM.
public enum VMMSelection {
    /// Firecracker first (isolation and boot time), then QEMU with KVM, then QEMU under TCG.
    public static let preference: [VMMKind] = [.firecracker, .qemuKVM, .qemuTCG]

    /// One VMM the settings let the worker use: to be probed, or settled by the settings themselves.
    public enum Candidate: Sendable, Hashable {
        /// Usable only if its probe says so.
        case probe(VMMKind)
        /// Decided by a setting (`qemu-accelerator=kvm` or `tcg`); no probe runs.
        case settled(VMMProbeResult)
    }

    /// The VMMs `vmm` and `qemuAccelerator` allow, in ``preference`` order. `qemu-accelerator=kvm`
    /// takes KVM as usable without a probe; `qemu-accelerator=tcg` rules KVM out.
    public static func candidates(vmm: VMMChoice, qemuAccelerator: QEMUAcceleratorChoice) -> [Candidate] {
        var candidates: [Candidate] = []
        if vmm != .qemu { candidates.append(.probe(.firecracker)) }
        guard vmm != .firecracker else { return candidates }
        switch qemuAccelerator {
        case .auto:
            candidates += [.probe(.qemuKVM), .probe(.qemuTCG)]
        case .kvm:
            candidates.append(.settled(VMMProbeResult(kind: .qemuKVM, usable: true, reason: "qemu-accelerator=kvm (not probed)")))
        case .tcg:
            candidates += [.settled(VMMProbeResult(kind: .qemuKVM, usable: false, reason: "qemu-accelerator=tcg")), .probe(.qemuTCG)]
        }
        return candidates
    }

    /// Probes every candidate of the settings in order (each result also goes to `report` as soon as
    /// it is known, for `doctor`), then picks: `vmm=firecracker` needs Firecracker usable, anything
    /// else takes the first usable VMM in ``preference`` order.
    public static func choose(
        vmm: VMMChoice, qemuAccelerator: QEMUAcceleratorChoice,
        probe: (VMMKind) async -> VMMProbeResult, report: (VMMProbeResult) -> Void = { _ in }
    ) async -> VMMDecision {
        var probes: [VMMProbeResult] = []
        for candidate in candidates(vmm: vmm, qemuAccelerator: qemuAccelerator) {
            let result: VMMProbeResult
            switch candidate {
            case .probe(let kind): result = await probe(kind)
            case .settled(let settled): result = settled
            }
            report(result)
            probes.append(result)
        }
        let choice: Result<VMMKind, VMError>
        do {
            choice = .success(vmm == .firecracker ? try require(.firecracker, from: probes) : try auto(probes))
        } catch {
            choice = .failure(error)
        }
        return VMMDecision(probes: probes, choice: choice)
    }

    /// `vmm=auto`: the first usable VMM in ``preference`` order. A VMM without a probe result is
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

/// What ``VMMSelection/choose(vmm:qemuAccelerator:probe:report:)`` found: every result, in the
/// order checked (for the startup log and `doctor`), and the VMM picked or why there is none.
public struct VMMDecision: Sendable {
    /// One result per candidate, in preference order.
    public var probes: [VMMProbeResult]
    /// The VMM to use, or `vmmUnavailable` with every reason.
    public var choice: Result<VMMKind, VMError>

    public init(probes: [VMMProbeResult], choice: Result<VMMKind, VMError>) {
        self.probes = probes
        self.choice = choice
    }
}
