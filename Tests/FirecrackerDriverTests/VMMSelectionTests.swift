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
