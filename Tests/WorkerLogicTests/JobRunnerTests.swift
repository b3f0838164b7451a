import AgentProtocol
import JobQueue
import MicroVM
import Testing

@testable import Worker

/// One job through ``JobRunner`` with a scripted guest: what the platform's status list gets for each way a
/// run can end, and what the guest is asked to run.
@Suite("Job runner")
struct JobRunnerTests {
    /// Runs `payload` to its end and returns its status list.
    func run(
        _ payload: String, configuration: WorkerConfiguration = WorkerFixtures.configuration(), driver: ScriptedDriver,
        queue: InMemoryJobQueue = InMemoryJobQueue()
    ) async throws -> [String] {
        let (runner, _) = WorkerFixtures.runner(configuration, queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(payload, from: queue)
        await runner.run(claimed)
        #expect(await queue.processing.isEmpty, "the job still holds its place in the processing list")
        return await queue.statusLists[claimed.id ?? ""] ?? []
    }

    @Test("a program that ran is done: received, running, then done with stdout, stderr and the result JSON")
    func done() async throws {
        let driver = ScriptedDriver { .ok(for: $0, stdout: "hi\n", stderr: "warn\n") }
        let queue = InMemoryJobQueue()
        let statuses = try await run(#"{"id":"j1","command":"echo hi"}"#, driver: driver, queue: queue)
        #expect(statuses.prefix(5) == ["received", "running", "done", "hi\n", "warn\n"])
        guard case .done(_, _, let record)? = await queue.outcomes["j1"] else {
            Issue.record("no done outcome: \(statuses)")
            return
        }
        #expect(record.verdict == "ok")
        #expect(record.exitCode == 0)
        #expect(record.vmm == "scripted")
        #expect(record.bootMilliseconds == 7)
        #expect(record.wallMilliseconds == 12)
        #expect(driver.requests.map(\.workload) == [.shell(command: "echo hi")])
        #expect(driver.live == 0)
    }

    /// `host_cpu_ms` is what the driver reported once the VM was torn down, for a done job and for a
    /// failed one alike (a limit's VM cost the host too); unknown, the key is left out, not zero.
    @Test("the result JSON says what the job's VM cost the host when the driver could tell")
    func hostCPU() async throws {
        let queue = InMemoryJobQueue()
        _ = try await run(#"{"id":"c1","command":"true"}"#, driver: ScriptedDriver(cpuTime: .milliseconds(183)), queue: queue)
        guard case .done(_, _, let done)? = await queue.outcomes["c1"] else {
            Issue.record("no done outcome")
            return
        }
        #expect(done.hostCPUMilliseconds == 183)
        #expect(done.json().contains(#""host_cpu_ms":183"#), "\(done.json())")

        let limited = ScriptedDriver(cpuTime: .milliseconds(2500)) { .with($0, .timeLimit, exitCode: nil, signal: 9) }
        _ = try await run(#"{"id":"c2","command":"sleep 99"}"#, driver: limited, queue: queue)
        guard case .failed(_, let failed?)? = await queue.outcomes["c2"] else {
            Issue.record("no failed outcome with a result")
            return
        }
        #expect(failed.hostCPUMilliseconds == 2500)

        _ = try await run(#"{"id":"c3","command":"true"}"#, driver: ScriptedDriver(), queue: queue)
        guard case .done(_, _, let unknown)? = await queue.outcomes["c3"] else {
            Issue.record("no done outcome")
            return
        }
        #expect(unknown.hostCPUMilliseconds == nil)
        #expect(!unknown.json().contains("host_cpu_ms"))
    }

    @Test("a program that exits non-zero still ran: done, with its exit code")
    func runtimeError() async throws {
        let driver = ScriptedDriver { .with($0, .runtimeError, exitCode: 3, stderr: "boom\n") }
        let queue = InMemoryJobQueue()
        let statuses = try await run(#"{"id":"j2","command":"exit 3"}"#, driver: driver, queue: queue)
        #expect(statuses.prefix(5) == ["received", "running", "done", "", "boom\n"])
        guard case .done(_, _, let record)? = await queue.outcomes["j2"] else {
            Issue.record("no done outcome: \(statuses)")
            return
        }
        #expect(record.exitCode == 3)
        #expect(record.verdict == "runtime_error")
    }

    /// Verdicts that stop a program: `failed` with a reason a person can act on; the verdict stays in the JSON.
    static let limitVerdicts: [(verdict: Verdict, exitCode: Int32?, signal: Int32?, reason: String)] = [
        (.timeLimit, nil, 9, "time limit of 10 s exceeded"),
        (.memoryLimit, nil, 9, "memory limit of 128 MiB exceeded"),
        (.outputLimit, nil, 9, "output limit of 1048576 bytes exceeded"),
        (.internalError, nil, nil, "internal error in the VM: agent broke"),
    ]

    @Test("a limit or an internal error is failed with its reason", arguments: limitVerdicts)
    func limitFailures(_ expected: (verdict: Verdict, exitCode: Int32?, signal: Int32?, reason: String)) async throws {
        let driver = ScriptedDriver {
            .with($0, expected.verdict, exitCode: expected.exitCode, signal: expected.signal, message: "agent broke")
        }
        let queue = InMemoryJobQueue()
        let statuses = try await run(#"{"id":"lim","command":"true"}"#, driver: driver, queue: queue)
        #expect(statuses.prefix(4) == ["received", "running", "failed", expected.reason])
        guard case .failed(_, let record)? = await queue.outcomes["lim"] else {
            Issue.record("no failed outcome: \(statuses)")
            return
        }
        #expect(record?.verdict == expected.verdict.rawValue)
        #expect(record?.message == expected.reason)
    }

    @Test("a compile error fails with the compiler's first error line; the whole output is in compile_output")
    func compileError() async throws {
        let output = "main.c: In function 'main':\nmain.c:1:1: error: unknown type name 'foo'\n"
        let driver = ScriptedDriver { .with($0, .compileError, exitCode: 1, compileOutput: output) }
        let queue = InMemoryJobQueue()
        let statuses = try await run(#"{"id":"cc","language":"c","code":"foo bar;"}"#, driver: driver, queue: queue)
        #expect(statuses.prefix(4) == ["received", "running", "failed", "compile error: main.c:1:1: error: unknown type name 'foo'"])
        guard case .failed(_, let record)? = await queue.outcomes["cc"] else { return }
        #expect(record?.compileOutput == output)
    }

    @Test("a VM that cannot boot fails the job with the driver's message, and `running` is never pushed")
    func bootFailure() async throws {
        let driver = ScriptedDriver(bootError: VMError(.bootFailed, "qemu exited with 1"))
        let queue = InMemoryJobQueue()
        let statuses = try await run(#"{"id":"vm","command":"true"}"#, driver: driver, queue: queue)
        #expect(statuses.prefix(3) == ["received", "failed", "VM failure: qemu exited with 1"])
        guard case .failed(_, let record)? = await queue.outcomes["vm"] else { return }
        #expect(record?.vmm == "scripted")
        #expect(driver.total == 1)
        #expect(driver.live == 0)
    }

    @Test("a VM that outlives the host's bound is reported as the job's time limit")
    func hostTimeout() async throws {
        let driver = ScriptedDriver { _ in throw VMError(.hostTimeout, "no result after 15 s") }
        let statuses = try await run(#"{"id":"ht","command":"sleep 99"}"#, driver: driver)
        #expect(statuses.prefix(4) == ["received", "running", "failed", "time limit of 10 s exceeded (the VM did not stop and was destroyed)"])
    }

    @Test("requested limits reach the guest clamped to the operator's maximums, the rest defaulted")
    func limitsClamped() async throws {
        let driver = ScriptedDriver()
        let configuration = WorkerFixtures.configuration()
        _ = try await run(
            #"{"id":"cl","command":"true","timeout_ms":1500,"limits":{"wall_time_ms":999999,"memory_mb":100000,"processes":5}}"#,
            configuration: configuration, driver: driver)
        let limits = try #require(driver.requests.first?.limits)
        // The smaller of timeout_ms and wall_time_ms; memory down to max-memory-mib; processes as asked; output defaulted.
        #expect(limits.wallTimeMilliseconds == 1500)
        #expect(limits.memoryBytes == configuration.maximumLimits.memoryBytes)
        #expect(limits.maxProcesses == 5)
        #expect(limits.maxOutputBytesPerStream == configuration.defaultLimits.maxOutputBytesPerStream)
        #expect(driver.hostTimeouts == [.milliseconds(1500) + configuration.hostTimeoutMargin])
    }

    @Test("a program reaches the guest in its language; compiled languages get twice the wall time on the host")
    func programWorkload() async throws {
        let driver = ScriptedDriver()
        let configuration = WorkerFixtures.configuration()
        _ = try await run(#"{"id":"pg","variant":"c++","code":"int main(){}","timeout_ms":2000}"#, configuration: configuration, driver: driver)
        #expect(driver.requests.map(\.workload) == [.program(language: .cpp, source: "int main(){}")])
        #expect(driver.hostTimeouts == [.milliseconds(4000) + configuration.hostTimeoutMargin])
    }

    @Test("a job asking for network on a worker without it fails at once, without a VM")
    func networkRefused() async throws {
        let driver = ScriptedDriver()
        let statuses = try await run(#"{"id":"net","command":"true","network":true}"#, driver: driver)
        #expect(statuses.prefix(3) == ["received", "failed", "network access is not allowed on this worker"])
        #expect(driver.total == 0)
    }

    @Test("a payload the parser refuses gets failed + its reason on its own list, without received or a VM")
    func parserRefusal() async throws {
        let driver = ScriptedDriver()
        let statuses = try await run(#"{"id":"bad","command":42}"#, driver: driver)
        #expect(statuses.prefix(2) == ["failed", "invalid job: field 'command' must be a string, got number"])
        #expect(driver.total == 0)
    }
}
