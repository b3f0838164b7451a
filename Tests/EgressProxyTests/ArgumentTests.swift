import EgressProxy
import Testing

@Suite struct ArgumentTests {
    @Test func defaultsWithoutArguments() throws {
        let parsed = try EgressArguments.parse([])
        #expect(parsed.options == EgressOptions())
        #expect(parsed.options.allowedPorts == [443, 80])
        #expect(parsed.options.maxBytes == 256 * 1024 * 1024)
        #expect(parsed.options.slotsDirectory == nil)
        #expect(!parsed.checkOnly)
    }

    @Test func parsesEveryOption() throws {
        let parsed = try EgressArguments.parse([
            "--allow-ports", "443,8443", "--allow-address", "127.0.0.1", "--allow-address=::1",
            "--slots-dir", "/run/codebench/vm-7/egress", "--max-connections", "4", "--log-file", "/var/log/egress.log",
            "--idle-timeout-seconds", "30", "--head-timeout-seconds=2.5", "--connect-timeout-seconds", "5",
            "--max-bytes", "1048576", "--check",
        ])
        var expected = EgressOptions()
        expected.allowedPorts = [443, 8443]
        expected.allowedAddresses = [IPAddress("127.0.0.1")!, IPAddress("::1")!]
        expected.slotsDirectory = "/run/codebench/vm-7/egress"
        expected.maxConnections = 4
        expected.logFile = "/var/log/egress.log"
        expected.idleTimeout = .seconds(30)
        expected.headTimeout = .milliseconds(2500)
        expected.connectTimeout = .seconds(5)
        expected.maxBytes = 1_048_576
        #expect(parsed.options == expected)
        #expect(parsed.checkOnly)
    }

    @Test(arguments: [
        ["--allow-ports", "443,,80"], ["--allow-ports", "0"], ["--allow-ports", "65536"], ["--allow-address", "localhost"],
        ["--allow-address", "127.1"], ["--max-connections", "0"], ["--max-bytes", "-5"], ["--idle-timeout-seconds", "0"],
        ["--idle-timeout-seconds", "nan"], ["--log-file"], ["--verbose"], ["extra"], ["--slots-dir="],
    ])
    func rejectsBadArguments(arguments: [String]) {
        #expect(throws: ArgumentError.self) { try EgressArguments.parse(arguments) }
    }
}
