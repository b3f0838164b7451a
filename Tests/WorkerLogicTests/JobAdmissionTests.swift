import AgentProtocol
import Foundation
import JobQueue
import Testing

@testable import Worker

/// Values the guest agent would refuse are refused before a VM boots, naming the job's field
/// (issue 11): the scripted driver must never be asked for a VM.
@Suite("Job admission: the agent's rules before a boot")
struct JobAdmissionTests {
    /// A refused job, shown by its name (a payload can be 128 KiB long).
    struct Refused: Sendable, CustomTestStringConvertible {
        var name: String
        var payload: String
        var reason: String
        var testDescription: String { name }
    }

    static let refused: [Refused] = [
        Refused(
            name: "memory_bytes 1", payload: #"{"id":"a1","command":"true","limits":{"memory_bytes":1}}"#,
            reason: "invalid job: field 'limits.memory_bytes' must be at least 16777216"),
        Refused(
            name: "NUL in command", payload: #"{"id":"a2","command":"echo a\u0000b"}"#,
            reason: "invalid job: field 'command' must not contain a NUL byte"),
        // The reason names the field the job used, not the one the Worker converted it to.
        Refused(
            name: "memory_mb 8", payload: #"{"id":"a3","command":"true","limits":{"memory_mb":8}}"#,
            reason: "invalid job: field 'limits.memory_mb' must be at least 16"),
        Refused(
            name: "command longer than exec allows",
            payload: #"{"id":"a4","command":"\#(String(repeating: "x", count: RequestRules.maximumCommandBytes + 1))"}"#,
            reason: "invalid job: field 'command' must be at most \(RequestRules.maximumCommandBytes) bytes"),
    ]

    @Test("refused with failed + the reason on the job's own list, without received and without a VM", arguments: refused)
    func refusedBeforeBoot(_ job: Refused) async throws {
        let driver = ScriptedDriver()
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(job.payload, from: queue)
        let id = try #require(claimed.id)
        await runner.run(claimed)
        #expect(driver.total == 0, "a VM was asked for")
        #expect(await queue.statusLists[id]?.prefix(2) == ["failed", job.reason])
        #expect(await queue.processing.isEmpty)
        guard case .failed(_, let record)? = await queue.outcomes[id] else {
            Issue.record("no failed outcome for \(id)")
            return
        }
        #expect(record?.message == job.reason)
    }

    @Test("the request is checked again after the operator's limits are applied")
    func finalRequestChecked() throws {
        let job = JobRequest(id: "f1", workload: .shell(command: "true"))
        var limits = ResourceLimits()
        limits.maxOutputBytesPerStream = RequestRules.maximumOutputBytes + 1
        #expect(
            JobAdmission.request(for: job, limits: limits)
                == .failure(.init("field 'limits.output_bytes' must be at most \(RequestRules.maximumOutputBytes)")))
    }

    @Test("an acceptable job becomes the request the guest will get, with the clamped limits")
    func admitted() throws {
        let job = JobRequest(id: "ok", workload: .program(language: .python, source: "print(1)"), stdin: Array("in".utf8))
        let limits = ResourceLimits(wallTimeMilliseconds: 2000, memoryBytes: 64 << 20, maxProcesses: 8, maxOutputBytesPerStream: 1024)
        let request = try JobAdmission.request(for: job, limits: limits).get()
        #expect(request.workload == .program(language: .python, source: "print(1)"))
        #expect(request.stdin == Data("in".utf8))
        #expect(request.limits == limits)
    }

    @Test("an operator's limits the agent would refuse are refused at start, naming the setting")
    func operatorLimits() {
        var configuration = WorkerFixtures.configuration()
        configuration.maximumLimits.maxOutputBytesPerStream = RequestRules.maximumOutputBytes + 1
        #expect(
            throws: WorkerConfigurationError(
                .inconsistent, "max-output-bytes must be at most \(RequestRules.maximumOutputBytes) (the guest agent's limit)")
        ) { try configuration.validate() }
        configuration = WorkerFixtures.configuration()
        configuration.defaultLimits.memoryBytes = 8 << 20
        #expect(throws: WorkerConfigurationError(.inconsistent, "default-memory-mib must be at least 16")) {
            try configuration.validate()
        }
    }
}
