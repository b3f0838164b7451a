import FirecrackerDriver
import QEMUDriver
import Testing
import Worker

/// What `doctor` says protects the host from a job, per VMM: the pure report behind it.
@Suite("VMM protections report")
struct VMMProtectionsTests {
    static let everyKind = VMMProtection.Kind.allCases

    static func kinds(_ protections: [VMMProtection]) -> [VMMProtection.Kind] { protections.map(\.kind) }
    static func off(_ protections: [VMMProtection]) -> [VMMProtection.Kind] { protections.filter { !$0.isOn }.map(\.kind) }
    static func detail(_ kind: VMMProtection.Kind, in protections: [VMMProtection]) -> String {
        protections.first { $0.kind == kind }?.detail ?? "missing"
    }

    @Test("the worker's jailed QEMU has every protection on, with its figures")
    func jailedQEMU() {
        let worker = WorkerConfiguration()
        let protections = VMMProtections.qemu(
            DriverSelection.qemuConfiguration(.tcg, worker), vmMemoryMiB: 256, vcpus: 1, allowNetwork: false)
        #expect(Self.kinds(protections) == Self.everyKind)
        #expect(Self.off(protections) == [])
        #expect(Self.detail(.cgroupMemory, in: protections)
            == "memory.max 416 MiB = guest 256 MiB + TCG translation cache 64 MiB + QEMU overhead 96 MiB, no swap")
        #expect(Self.detail(.cgroupCPU, in: protections) == "cpu.max 100000/100000 µs (1 vCPU)")
        #expect(Self.detail(.cgroupPIDs, in: protections) == "pids.max 128")
        #expect(Self.detail(.separateUID, in: protections).contains("64000-64999, gid 64000"))
        #expect(Self.detail(.rlimits, in: protections) == "RLIMIT_FSIZE 16 MiB, RLIMIT_NOFILE 256")
        #expect(Self.detail(.seccomp, in: protections).hasPrefix("QEMU's -sandbox on"))
    }

    @Test("under KVM the memory limit has no translation cache and /dev/kvm is in the root")
    func jailedQEMUUnderKVM() {
        let protections = VMMProtections.qemu(
            DriverSelection.qemuConfiguration(.kvm, WorkerConfiguration()), vmMemoryMiB: 512, vcpus: 2, allowNetwork: false)
        #expect(Self.detail(.cgroupMemory, in: protections) == "memory.max 608 MiB = guest 512 MiB + QEMU overhead 96 MiB, no swap")
        #expect(Self.detail(.cgroupCPU, in: protections) == "cpu.max 200000/100000 µs (2 vCPUs)")
        #expect(Self.detail(.ownRoot, in: protections).hasSuffix("/dev/kvm"))
    }

    @Test("with allow-network, every protection stays on: a VM with network has its own namespace too, with the proxy's listener")
    func networkJobsKeepTheirOwnNamespace() {
        let protections = VMMProtections.qemu(
            DriverSelection.qemuConfiguration(.tcg, WorkerConfiguration()), vmMemoryMiB: 256, vcpus: 1, allowNetwork: true)
        #expect(Self.off(protections).isEmpty)
        #expect(Self.detail(.networkNamespace, in: protections).contains("egress proxy"))
        #expect(Self.detail(.seccomp, in: protections).contains("spawn"))
    }

    @Test("qemu-jail=off turns every protection off, each line naming qemu-jail=on")
    func unjailedQEMU() {
        var worker = WorkerConfiguration()
        worker.qemuJail = false
        let protections = VMMProtections.qemu(DriverSelection.qemuConfiguration(.tcg, worker), vmMemoryMiB: 256, vcpus: 1, allowNetwork: false)
        #expect(Self.off(protections) == Self.everyKind)
        for protection in protections {
            #expect(protection.detail.hasPrefix("qemu-jail=off: "), "\(protection.line)")
            #expect(protection.detail.hasSuffix("qemu-jail=on (the default) turns it on"), "\(protection.line)")
        }
        #expect(Self.detail(.separateUID, in: protections).contains("the worker's uid (root)"))
    }

    @Test("Firecracker without a jailer keeps only its own seccomp and no_new_privs")
    func firecrackerWithoutJailer() {
        let protections = VMMProtections.firecracker(FirecrackerDriver.Configuration(), vmMemoryMiB: 256, vcpus: 1)
        #expect(Self.kinds(protections) == Self.everyKind)
        #expect(Self.off(protections) == Self.everyKind.filter { $0 != .seccomp && $0 != .noNewPrivileges })
        #expect(Self.detail(.separateUID, in: protections) == "no jailer: runs as the worker's uid (root); the jailer's --uid turns it on")
        for protection in protections where !protection.isOn && protection.kind != .parentDeathSignal { #expect(protection.detail.hasPrefix("no jailer: "), "\(protection.line)") }
    }

    @Test("Firecracker under its jailer: what the jailer gives, and what it cannot")
    func firecrackerWithJailer() {
        var configuration = FirecrackerDriver.Configuration()
        configuration.jailer = JailerConfiguration(jailerPath: "/usr/local/bin/jailer")
        let protections = VMMProtections.firecracker(configuration, vmMemoryMiB: 256, vcpus: 1)
        #expect(Self.kinds(protections) == Self.everyKind)
        #expect(Self.off(protections) == [.ipcNamespace, .utsNamespace, .networkNamespace, .cgroupPIDs, .parentDeathSignal])
        #expect(Self.detail(.cgroupMemory, in: protections) == "memory.max 320 MiB = guest 256 + 64 MiB")
        #expect(Self.detail(.networkNamespace, in: protections).contains("set it to a /var/run/netns name"))

        configuration.jailer?.networkNamespace = "fc0"
        configuration.jailer?.newPIDNamespace = false
        let changed = VMMProtections.firecracker(configuration, vmMemoryMiB: 256, vcpus: 1)
        #expect(Self.detail(.networkNamespace, in: changed) == "jailer --netns fc0")
        #expect(Self.off(changed) == [.pidNamespace, .ipcNamespace, .utsNamespace, .cgroupPIDs, .parentDeathSignal])
    }

    @Test("the report names each VMM as the worker would start it, and a host that cannot jail")
    func report() {
        let lines = VMMProtections.report(
            worker: WorkerConfiguration(), qemuAccelerator: .tcg, firecracker: FirecrackerDriver.Configuration(),
            jailProblems: ["the worker runs as uid 1000, not root"])
        #expect(lines.first == "protections (docs/security.md):")
        #expect(lines.contains("  qemu-tcg with qemu-jail=on:"))
        #expect(lines.contains("    this host cannot jail QEMU, so `run` refuses to start: the worker runs as uid 1000, not root"))
        #expect(lines.contains { $0.hasPrefix("  firecracker without a jailer (the worker has no jailer setting yet") })
        #expect(lines.contains("    on   separate uid          each VM's QEMU runs as its own uid from 64000-64999, gid 64000, no supplementary groups"))
        #expect(lines.filter { $0.hasPrefix("    on   ") || $0.hasPrefix("    OFF  ") }.count == 2 * Self.everyKind.count)

        var unjailed = WorkerConfiguration()
        unjailed.qemuJail = false
        let quiet = VMMProtections.report(
            worker: unjailed, qemuAccelerator: .tcg, firecracker: FirecrackerDriver.Configuration(), jailProblems: [])
        #expect(quiet.contains("  qemu-tcg with qemu-jail=off:"))
        #expect(!quiet.contains { $0.contains("cannot jail") })
    }
}
