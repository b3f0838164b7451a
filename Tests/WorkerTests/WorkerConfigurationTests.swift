import Foundation
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
