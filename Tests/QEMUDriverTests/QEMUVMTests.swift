import AgentProtocol
import FoundationEssentials
import MicroVM
import QEMUDriver
import Testing

/// Real VMs under QEMU TCG. One VM at a time (the machine has 2 cores, and some tests bound time).
/// The time limit catches a hang, not slowness: twenty cold TCG boots in a row on a loaded host
/// can take a minute or two.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct QEMUVMTests {
    @Test func unameSaysLinux() async throws {
        let result = try await VMTest.runOne(VMTest.request("uname -a"))
        #expect(result.verdict == .ok, "\(result.summary)")
        #expect(result.exitCode == 0)
        #expect(result.stdoutText.contains("Linux"), "\(result.summary)")
    }

    @Test func exitCodeComesBack() async throws {
        let result = try await VMTest.runOne(VMTest.request("exit 3"))
        #expect(result.exitCode == 3, "\(result.summary)")
        #expect(result.verdict == .runtimeError, "\(result.summary)")
    }

    @Test func stdoutAndStderrAreSeparate() async throws {
        let result = try await VMTest.runOne(VMTest.request("echo to-out; echo to-err >&2"))
        #expect(result.stdoutText == "to-out\n", "\(result.summary)")
        #expect(result.stderrText == "to-err\n", "\(result.summary)")
    }

    @Test func stdinReachesTheProgram() async throws {
        let result = try await VMTest.runOne(VMTest.request("tr a-z A-Z", stdin: "hello from the host\n"))
        #expect(result.stdoutText == "HELLO FROM THE HOST\n", "\(result.summary)")
    }


    /// A request that prepares the next one is answered only once the prepared shell has finished its
    /// start-up and sleeps waiting for its command: a template is saved right after that answer, and
    /// a shell caught starting up would finish in every clone (docs/snapshots.md). The readiness
    /// descriptor the shell closes is not left to the command.
    @Test func thePreparedShellIsWaitingBeforeTheAnswer() async throws {
        var warmUp = VMTest.request("true")
        warmUp.prepareNextRequest = true
        warmUp.tracePhases = true
        var next = VMTest.request("ls /proc/self/fd | tr '\\n' ' '")
        next.tracePhases = true
        let (first, second) = try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
            (try await session.run(warmUp, timeout: .seconds(20)), try await session.run(next, timeout: .seconds(20)))
        }
        #expect(first.verdict == .ok, "\(first.summary)")
        #expect(first.phases?.map(\.name).contains("next shell waiting") == true, "\(first.phases ?? [])")
        #expect(second.phases?.map(\.name).contains("prepared shell") == true, "\(second.phases ?? [])")
        // `ls` has its directory open as fd 3; nothing else beyond the standard streams.
        #expect(second.stdoutText == "0 1 2 3 ", "\(second.summary)")
    }
    @Test func pythonProgramFromSource() async throws {
        let request = RunRequest(
            id: "py", workload: .program(language: .python, source: "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"),
            stdin: Data("1 2 3 36\n".utf8))
        let result = try await VMTest.runOne(request)
        #expect(result.verdict == .ok, "\(result.summary)")
        #expect(result.stdoutText == "42\n", "\(result.summary)")
    }

    @Test func cProgramFromSource() async throws {
        let source = "#include <stdio.h>\nint main(void) { int a, b; if (scanf(\"%d %d\", &a, &b) != 2) return 1; printf(\"%d\\n\", a * b); return 0; }\n"
        let request = RunRequest(id: "c", workload: .program(language: .c, source: source), stdin: Data("6 7".utf8))
        let result = try await VMTest.runOne(request)
        #expect(result.verdict == .ok, "\(result.summary)")
        #expect(result.stdoutText == "42\n", "\(result.summary)")
    }

    @Test func cProgramThatDoesNotCompileIsACompileError() async throws {
        let request = RunRequest(id: "cc", workload: .program(language: .c, source: "int main(void) { return undeclared_thing; }\n"))
        let result = try await VMTest.runOne(request)
        #expect(result.verdict == .compileError, "\(result.summary)")
        #expect(result.compileText.contains("undeclared_thing"), "\(result.summary)")
    }

    @Test func sleepIsStoppedAtTheWallTimeLimit() async throws {
        let request = VMTest.request("sleep 100", wallMs: 2000)
        let (result, elapsed) = try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await session.run(request, timeout: .seconds(15))
            return (result, clock.now - start)
        }
        #expect(result.verdict == .timeLimit, "\(result.summary)")
        // The guest's clock says when the limit struck; the host's only that its own 15 s timeout did not
        // (what lies around the guest's window, mount, cgroup, reaping, is slow under a loaded TCG host).
        #expect((2000..<3000).contains(result.wallTimeMilliseconds), "\(result.summary)")
        #expect(elapsed < .seconds(10), "run took \(elapsed)")
    }

    @Test func endlessOutputIsTruncatedAtTheCap() async throws {
        let result = try await VMTest.runOne(VMTest.request("yes", wallMs: 5000, output: 64 << 10))
        #expect(result.stdoutTruncated, "\(result.summary)")
        #expect(result.stdout.count == 64 << 10, "\(result.stdout.count) bytes kept")
    }

    @Test func memoryHogHitsTheMemoryLimit() async throws {
        let hog = "python3 -c 'b = bytearray(200 << 20); b[::4096] = b\"x\" * len(b[::4096]); print(len(b))'"
        let result = try await VMTest.runOne(VMTest.request(hog, memory: 64 << 20))
        #expect(result.verdict == .memoryLimit, "\(result.summary)")
    }

    @Test func forkBombIsContainedAndTheVMStillAnswers() async throws {
        let bomb = VMTest.request("bomb() { bomb | bomb & }; bomb; sleep 2", wallMs: 3000, processes: 32)
        let (first, second) = try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
            let first = try await session.run(bomb, timeout: .seconds(20))
            let second = try await session.run(VMTest.request("echo still here"), timeout: .seconds(20))
            return (first, second)
        }
        #expect(first.verdict != .internalError, "\(first.summary)")
        #expect(second.verdict == .ok, "\(second.summary)")
        #expect(second.stdoutText == "still here\n", "\(second.summary)")
    }

    @Test func hostTimeoutBoundsARunTheGuestDoesNotEnd() async throws {
        // The agent's own limit is far away: only the host-side timeout can end this.
        let request = VMTest.request("sleep 100", wallMs: 60_000)
        let clock = ContinuousClock()
        var elapsed = Duration.zero
        let error = await #expect(throws: VMError.self) {
            try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                let start = clock.now
                defer { elapsed = clock.now - start }
                return try await session.run(request, timeout: .seconds(1))
            }
        }
        #expect(error?.code == .hostTimeout)
        #expect(elapsed < .seconds(5))
    }
}
