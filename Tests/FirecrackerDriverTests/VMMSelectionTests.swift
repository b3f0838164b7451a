import MicroVM
import Testing

@Suite struct VMMSelectionTests {
    private func probe(_ kind: VMMKind, _ usable: Bool, _ reason: String = "r") -> VMMProbeResult {
        VMMProbeResult(kind: kind, usable: usable, reason: reason)
    }

    @Test func autoPrefersFirecrackerThenQEMUKVMThenTCG() throws {
        #expect(try VMMSelection.auto([probe(.qemuTCG, true), probe(.qemuKVM, true), probe(.firecracker, true)]) == .firecracker)
        #expect(try VMMSelection.auto([probe(.firecracker, false), probe(.qemuKVM, true), probe(.qemuTCG, true)]) == .qemuKVM)
        // This machine: no firecracker binary, KVM emulation failure, TCG works.
        #expect(try VMMSelection.auto([
            probe(.firecracker, false, "binary missing"), probe(.qemuKVM, false, "emulation failure"), probe(.qemuTCG, true),
        ]) == .qemuTCG)
    }

    @Test func noUsableVMMListsEveryReason() {
        let error = #expect(throws: VMError.self) {
            try VMMSelection.auto([probe(.firecracker, false, "binary missing"), probe(.qemuTCG, false, "image not built")])
        }
        #expect(error?.code == .vmmUnavailable)
        #expect(error?.message.contains("firecracker: binary missing") == true)
        #expect(error?.message.contains("qemu-kvm: not probed") == true)
        #expect(error?.message.contains("qemu-tcg: image not built") == true)
    }

    @Test func anExplicitChoiceMustBeUsable() throws {
        #expect(try VMMSelection.require(.qemuTCG, from: [probe(.qemuTCG, true)]) == .qemuTCG)
        let error = #expect(throws: VMError.self) {
            try VMMSelection.require(.firecracker, from: [probe(.firecracker, false, "/dev/kvm is missing")])
        }
        #expect(error?.message.contains("/dev/kvm is missing") == true)
    }
}

/// The settings' side: which VMMs `vmm` and `qemu-accelerator` let the worker consider, and that
/// only those are probed.
@Suite struct VMMSettingsTests {
    private func kinds(_ candidates: [VMMSelection.Candidate]) -> [String] {
        candidates.map { candidate in
            switch candidate {
            case .probe(let kind): return "probe \(kind)"
            case .settled(let result): return "\(result.kind) \(result.usable ? "usable" : "unusable")"
            }
        }
    }

    @Test func eachSettingConsidersItsVMMsInPreferenceOrder() {
        #expect(kinds(VMMSelection.candidates(vmm: .auto, qemuAccelerator: .auto)) == ["probe firecracker", "probe qemu-kvm", "probe qemu-tcg"])
        #expect(kinds(VMMSelection.candidates(vmm: .qemu, qemuAccelerator: .auto)) == ["probe qemu-kvm", "probe qemu-tcg"])
        #expect(kinds(VMMSelection.candidates(vmm: .firecracker, qemuAccelerator: .auto)) == ["probe firecracker"])
        // qemu-accelerator=kvm trusts KVM without a probe (and leaves TCG out); tcg rules KVM out.
        #expect(kinds(VMMSelection.candidates(vmm: .qemu, qemuAccelerator: .kvm)) == ["qemu-kvm usable"])
        #expect(kinds(VMMSelection.candidates(vmm: .auto, qemuAccelerator: .tcg)) == ["probe firecracker", "qemu-kvm unusable", "probe qemu-tcg"])
        #expect(kinds(VMMSelection.candidates(vmm: .firecracker, qemuAccelerator: .tcg)) == ["probe firecracker"])
    }

    @Test func chooseProbesOnlyTheCandidatesReportsEachAndPicks() async throws {
        var probed: [VMMKind] = []
        var reported: [VMMKind] = []
        let decision = await VMMSelection.choose(
            vmm: .auto, qemuAccelerator: .tcg,
            probe: { kind in
                probed.append(kind)
                return VMMProbeResult(kind: kind, usable: kind == .qemuTCG, reason: "r")
            },
            report: { reported.append($0.kind) })
        #expect(probed == [.firecracker, .qemuTCG])
        #expect(reported == [.firecracker, .qemuKVM, .qemuTCG])
        #expect(try decision.choice.get() == .qemuTCG)
    }

    @Test func vmmFirecrackerNeverFallsBackToQEMU() async {
        let decision = await VMMSelection.choose(vmm: .firecracker, qemuAccelerator: .auto) { kind in
            VMMProbeResult(kind: kind, usable: false, reason: "binary missing")
        }
        #expect(decision.probes.map(\.kind) == [.firecracker])
        guard case .failure(let error) = decision.choice else {
            Issue.record("vmm=firecracker picked \(decision.choice)")
            return
        }
        #expect(error.message == "firecracker is not usable: binary missing")
    }
}
