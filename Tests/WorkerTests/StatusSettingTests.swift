import Logging
import MicroVM
import Testing

@testable import Worker

/// The `status-address` setting and the readiness the worker reports.
@Suite("Status address and worker health")
struct StatusSettingTests {
    @Test("status-address parses host:port, [v6]:port and off", arguments: [
        ("127.0.0.1:9464", StatusAddress.listen(host: "127.0.0.1", port: 9464)),
        ("0.0.0.0:0", .listen(host: "0.0.0.0", port: 0)),
        ("[::1]:9000", .listen(host: "::1", port: 9000)),
        ("localhost:80", .listen(host: "localhost", port: 80)),
        (" off ", .off),
        ("OFF", .off),
    ])
    func parses(text: String, expected: StatusAddress) {
        #expect(StatusAddress(parsing: text) == expected)
    }

    @Test("status-address refuses what is not an address", arguments: ["9464", "localhost", "::1:80", "[::1]", "host:port", "[]:80", ""])
    func refuses(text: String) {
        #expect(StatusAddress(parsing: text) == nil)
    }

    @Test("the default listens on loopback port 9464")
    func defaultAddress() {
        #expect(WorkerConfiguration().statusAddress == .listen(host: "127.0.0.1", port: 9464))
    }

    @Test("a bad status-address from a flag names the setting and what it expects")
    func loaderError() throws {
        let error = #expect(throws: WorkerConfigurationError.self) {
            try WorkerConfigurationLoader(flags: ["status-address": "nowhere"]).load()
        }
        #expect(error?.code == .invalidValue)
        #expect(error?.message.contains("status-address") == true)
        #expect(error?.message.contains("host:port") == true)
        let off = try WorkerConfigurationLoader(environment: ["CODEBENCH_STATUS_ADDRESS": "off"]).load()
        #expect(off.statusAddress == .off)
    }

    @Test("validation refuses a port out of range and an empty host", arguments: [
        StatusAddress.listen(host: "127.0.0.1", port: 70000), .listen(host: "", port: 80),
    ])
    func validation(address: StatusAddress) {
        var configuration = WorkerConfiguration()
        configuration.statusAddress = address
        let error = #expect(throws: WorkerConfigurationError.self) { try configuration.validate() }
        #expect(error?.message.contains("status-address") == true)
    }

    @Test("a health warning stays for the worker's life, once, whatever the state")
    func healthWarning() {
        let health = WorkerHealth()
        #expect(health.warning == nil)
        health.warn("qemu-jail=off: QEMU runs unjailed as root")
        health.warn("qemu-jail=off: QEMU runs unjailed as root")
        health.claimSucceeded()
        #expect(health.warning == "qemu-jail=off: QEMU runs unjailed as root")
        health.warn("second")
        health.startDraining()
        #expect(health.warning == "qemu-jail=off: QEMU runs unjailed as root; second")
    }

    @Test("the unjailed warning is given for a QEMU driver with qemu-jail=off only")
    func unjailedWarningNeedsQEMU() {
        struct Named: MicroVMDriver {
            let name: String
            func withVM<T: Sendable>(
                _ configuration: VMConfiguration, logger: Logger, usage: @escaping @Sendable (VMUsage) -> Void,
                _ body: (any GuestSession) async throws -> T
            ) async throws -> T {
                throw VMError(.bootFailed, "not a real driver")
            }
        }
        var off = WorkerConfiguration()
        off.qemuJail = false
        let logger = Logger(label: "test")
        for (name, configuration, warned) in [
            ("qemu-tcg", off, true), ("qemu-kvm", off, true), ("firecracker", off, false), ("qemu-tcg", WorkerConfiguration(), false),
        ] {
            let health = WorkerHealth()
            WorkerAssembly.warnIfQEMUUnjailed(configuration: configuration, driver: Named(name: name), health: health, logger: logger)
            #expect((health.warning != nil) == warned, "\(name), qemu-jail=\(configuration.qemuJail)")
        }
    }

    @Test("health: starting, then ready; an outage keeps its start; draining is final")
    func healthTransitions() {
        let health = WorkerHealth()
        #expect(health.notReadyReason == "starting")
        health.claimSucceeded()
        #expect(health.notReadyReason == nil)
        let since = ContinuousClock.now - .seconds(5)
        health.claimFailed(since: since)
        health.claimFailed(since: .now)
        #expect(health.state == .redisUnreachable(since: since))
        #expect(health.notReadyReason?.hasPrefix("redis unreachable since ") == true)
        #expect(health.notReadyReason?.hasSuffix(" s") == true)
        health.claimSucceeded()
        #expect(health.state == .ready)
        health.startDraining()
        health.claimSucceeded()
        health.claimFailed(since: .now)
        #expect(health.notReadyReason == "draining")
    }
}
