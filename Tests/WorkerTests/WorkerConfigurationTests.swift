import Foundation
import QEMUDriver
import TestSupport
import Testing

@testable import Worker

@Suite("Worker configuration")
struct WorkerConfigurationTests {
    @Test("defaults are valid and match the original worker's names")
    func defaults() throws {
        let configuration = try WorkerConfigurationLoader().load()
        #expect(configuration.intakeList == "jobs")
        #expect(configuration.statusKeyPrefix == "")
        #expect(configuration.allowNetwork == false)
        #expect(configuration.vmm == .auto)
        #expect(configuration.effectiveConcurrency >= 1)
    }

    @Test("flags beat environment, which beats the file")
    func precedence() throws {
        let file = NSTemporaryDirectory() + "/worker-config-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data(#"{"concurrency": 3, "status_key_prefix": "from-file:", "allow-network": true, "vmm": "qemu"}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        let configuration = try WorkerConfigurationLoader(
            flags: ["concurrency": "2"],
            environment: ["CODEBENCH_CONCURRENCY": "5", "CODEBENCH_STATUS_KEY_PREFIX": "worker_job_status_", "CODEBENCH_CONFIG": file]
        ).load()
        #expect(configuration.concurrency == 2)
        #expect(configuration.statusKeyPrefix == "worker_job_status_")
        #expect(configuration.allowNetwork == true)
        #expect(configuration.vmm == .qemu)
    }

    @Test("a bad value names the setting and its source")
    func badValue() {
        #expect {
            _ = try WorkerConfigurationLoader(environment: ["CODEBENCH_CONCURRENCY": "many"]).load()
        } throws: { error in
            let error = error as? WorkerConfigurationError
            return error?.code == .invalidValue
                && error?.message == "invalid value 'many' for environment variable CODEBENCH_CONCURRENCY: expected an integer"
        }
    }

    @Test("an unknown key in the file is refused, not ignored")
    func unknownKey() throws {
        let file = NSTemporaryDirectory() + "/worker-config-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data(#"{"concurency": 3}"#.utf8).write(to: URL(fileURLWithPath: file))
        #expect {
            _ = try WorkerConfigurationLoader(configFile: file).load()
        } throws: { error in
            (error as? WorkerConfigurationError)?.message == "unknown setting 'concurency' in config file \(file)"
        }
    }

    @Test("inconsistent limits are refused with the names of both settings")
    func inconsistentLimits() {
        #expect {
            _ = try WorkerConfigurationLoader(flags: ["default-wall-ms": "9000", "max-wall-ms": "5000"]).load()
        } throws: { error in
            (error as? WorkerConfigurationError)?.message == "default-wall-ms (9000) is above max-wall-ms (5000)"
        }
    }

    @Test("a snapshot directory a shell could misread is refused unless snapshots are off")
    func snapshotDirectory() throws {
        var configuration = WorkerConfiguration()
        configuration.snapshotDirectory = "/var/cache/x; rm -rf /"
        #expect(throws: WorkerConfigurationError.self) { try configuration.validate() }
        configuration.snapshots = false
        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test("default concurrency follows cores and memory")
    func defaultConcurrency() {
        // 2 cores, 24 GiB: cores bound it.
        #expect(WorkerConfiguration.defaultConcurrency(cores: 2, memoryBytes: 24 << 30, vmMemoryMiB: 256) == 2)
        // 16 cores, 2 GiB: (2048 - 1024) / (256 + 128) = 2.
        #expect(WorkerConfiguration.defaultConcurrency(cores: 16, memoryBytes: 2 << 30, vmMemoryMiB: 256) == 2)
        // Too little memory for even one VM still runs one.
        #expect(WorkerConfiguration.defaultConcurrency(cores: 4, memoryBytes: 1 << 30, vmMemoryMiB: 256) == 1)
    }

    @Test("with the jail, the default concurrency divides by the VM cgroup's memory limit")
    func jailedConcurrency() throws {
        // 256 MiB guest + 64 MiB translation cache + 96 MiB QEMU overhead, as the cgroup's memory.max.
        let jailed = WorkerConfiguration()
        #expect(jailed.perVMMemoryBytes == (256 + 64 + 96) << 20)
        #expect(jailed.perVMMemoryBytes == DriverSelection.qemuConfiguration(.tcg, jailed).vmMemoryLimitBytes(guestMemoryMiB: 256))
        // 16 cores, 4 GiB: (4096 - 1024) / 416 = 7, where the unjailed figure (384) gave 8.
        #expect(WorkerConfiguration.defaultConcurrency(cores: 16, memoryBytes: 4 << 30, perVMBytes: jailed.perVMMemoryBytes) == 7)
        #expect(WorkerConfiguration.defaultConcurrency(cores: 16, memoryBytes: 4 << 30, vmMemoryMiB: 256) == 8)

        var kvm = try WorkerConfigurationLoader(flags: ["qemu-accelerator": "kvm", "vm-memory-mib": "512"]).load()
        #expect(kvm.perVMMemoryBytes == (512 + 96) << 20, "KVM has no translation cache")
        kvm.qemuJail = false
        #expect(kvm.perVMMemoryBytes == (512 + 128) << 20, "unjailed: guest memory + 128 MiB, as before")
        var firecracker = WorkerConfiguration()
        firecracker.vmm = .firecracker
        #expect(firecracker.perVMMemoryBytes == (256 + 128) << 20)
        #expect(firecracker.sharedVMMemoryBytes == 0, "Firecracker maps the snapshot's file from the page cache")
    }

    @Test("the template's memfd and the standby QEMUs come off the host's memory before it is divided")
    func sharedMemoryOfCopyOnWrite() throws {
        // Copy-on-write (the default): the 256 MiB sealed template memory + one standby at QEMU's 96 MiB overhead.
        let copyOnWrite = WorkerConfiguration()
        #expect(copyOnWrite.sharedVMMemoryBytes == (256 + 96) << 20)
        // 16 cores, 4 GiB: (4096 - 1024 - 352) / 416 = 6, one VM fewer than without them.
        #expect(WorkerConfiguration.defaultConcurrency(
            cores: 16, memoryBytes: 4 << 30 - copyOnWrite.sharedVMMemoryBytes, perVMBytes: copyOnWrite.perVMMemoryBytes) == 6)
        let streamed = try WorkerConfigurationLoader(flags: ["qemu-restore": "streamed"]).load()
        #expect(streamed.sharedVMMemoryBytes == 0, "streamed restores copy the memory into each VM, which its own limit counts")
        let cold = try WorkerConfigurationLoader(flags: ["snapshots": "false"]).load()
        #expect(cold.sharedVMMemoryBytes == 0)
    }

    @Test("qemu-jail is on by default, takes on or off, and decides the QEMU driver's jail")
    func qemuJailSetting() throws {
        let defaults = try WorkerConfigurationLoader().load()
        #expect(defaults.qemuJail)
        #expect(defaults.qemuJailWarning == nil)
        let jail = DriverSelection.qemuConfiguration(.tcg, defaults).jail
        #expect(jail == QEMUJail())
        #expect(jail?.cgroup == QEMUCgroupLimits(), "the jail comes with its cgroup limits")

        let off = try WorkerConfigurationLoader(environment: ["CODEBENCH_QEMU_JAIL": "off"]).load()
        #expect(!off.qemuJail)
        #expect(DriverSelection.qemuConfiguration(.kvm, off).jail == nil)
        #expect(off.qemuJailWarning == "qemu-jail=off: QEMU runs unjailed as root")
        #expect(try WorkerConfigurationLoader(flags: ["qemu-jail": "on"], environment: ["CODEBENCH_QEMU_JAIL": "off"]).load().qemuJail)

        let error = #expect(throws: WorkerConfigurationError.self) { try WorkerConfigurationLoader(flags: ["qemu-jail": "maybe"]).load() }
        #expect(error?.message == "invalid value 'maybe' for flag --qemu-jail: expected on or off")
    }

    @Test("qemu-restore is copy-on-write by default, takes streamed, and reaches the QEMU driver")
    func qemuRestoreSetting() throws {
        let defaults = try WorkerConfigurationLoader().load()
        #expect(defaults.qemuRestore == .copyOnWrite)
        let driver = DriverSelection.qemuConfiguration(.tcg, defaults)
        #expect(driver.restoreMode == .copyOnWrite)
        #expect(driver.jail != nil)
        #expect(driver.effectiveRestoreMode == .copyOnWrite, "jailed (the default), VMs restore copy-on-write")
        let unjailed = try WorkerConfigurationLoader(flags: ["qemu-jail": "off"]).load()
        #expect(DriverSelection.qemuConfiguration(.tcg, unjailed).effectiveRestoreMode == .copyOnWrite)

        let streamed = try WorkerConfigurationLoader(environment: ["CODEBENCH_QEMU_RESTORE": "streamed"]).load()
        #expect(DriverSelection.qemuConfiguration(.kvm, streamed).restoreMode == .streamed)
        let error = #expect(throws: WorkerConfigurationError.self) { try WorkerConfigurationLoader(flags: ["qemu-restore": "lazy"]).load() }
        #expect(error?.message == "invalid value 'lazy' for flag --qemu-restore: expected streamed or copy-on-write")
    }

    @Test("a host that cannot jail QEMU is refused with every reason, naming qemu-jail=off as the way out")
    func unjailableHostRefused() throws {
        let root = try TemporaryDirectory(prefix: "cbcg")
        defer { root.remove() }
        let userHost = QEMUJailProbe(effectiveUID: 1000, cgroupRoot: root.path, ownCgroups: "0::/\n")
        let error = #expect(throws: WorkerConfigurationError.self) { try DriverSelection.checkQEMUJail(WorkerConfiguration(), probe: userHost) }
        #expect(error?.code == .hostNotReady)
        #expect(error?.message.hasPrefix("qemu-jail=on, but this host cannot jail QEMU: the worker runs as uid 1000, not root") == true)
        #expect(error?.message.contains("; cgroup directory \(root.path)/memory is missing") == true, "\(String(describing: error))")
        #expect(error?.message.hasSuffix("or set qemu-jail=off to run QEMU unjailed as root (docs/security.md)") == true)

        var off = WorkerConfiguration()
        off.qemuJail = false
        #expect(throws: Never.self) { try DriverSelection.checkQEMUJail(off, probe: userHost) }
    }

    @Test("egress ports and exceptions are settings, validated, and reach the QEMU driver")
    func egressSettings() throws {
        let configuration = try WorkerConfigurationLoader(
            flags: ["egress-ports": "443, 8443", "egress-allow-addresses": "10.1.2.3,fd00::1"], environment: [:]
        ).load()
        #expect(configuration.egressPorts == [443, 8443])
        #expect(configuration.egressAllowedAddresses == ["10.1.2.3", "fd00::1"])
        try configuration.validate()
        let qemu = DriverSelection.qemuConfiguration(.tcg, configuration)
        #expect(qemu.egressPorts == [443, 8443])
        #expect(qemu.egressAllowedAddresses == ["10.1.2.3", "fd00::1"])

        #expect(throws: (any Error).self) { try WorkerConfigurationLoader(flags: ["egress-ports": "443,https"], environment: [:]).load() }
        var bad = WorkerConfiguration()
        bad.egressPorts = [0]
        #expect(throws: WorkerConfigurationError.self) { try bad.validate() }
        bad = WorkerConfiguration()
        bad.egressAllowedAddresses = ["mirror.internal"]
        #expect(throws: WorkerConfigurationError.self) { try bad.validate() }
    }
}
