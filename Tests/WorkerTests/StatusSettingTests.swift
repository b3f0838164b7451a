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
