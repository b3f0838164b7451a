import AgentProtocol
import JobQueue
import MicroVM
import Testing

@testable import Worker

/// When the Worker asks the agent to stream, and what the job's output stream holds when it does not.
@Suite("Streaming policy")
struct StreamingPolicyTests {
    func run(_ payload: String, hello: AgentHello = AgentHello(agentVersion: "new", kernel: "none")) async throws
        -> (stream: [OutputStreamEntry]?, statuses: [String], request: RunRequest?)
    {
        let driver = ScriptedDriver(hello: hello)
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(WorkerFixtures.configuration(), queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(payload, from: queue)
        await runner.run(claimed)
        let id = claimed.id ?? ""
        return (await queue.outputStreams[id], await queue.statusLists[id] ?? [], driver.requests.first)
    }

    @Test func aStreamedJobAsksTheAgentToStreamAndEndsItsStreamWithTheStatus() async throws {
        let (stream, statuses, request) = try await run(#"{"id":"s","command":"echo hi","stream":true}"#)
        #expect(request?.streamOutput == true)
        #expect(statuses.prefix(3) == ["received", "running", "done"])
        // The scripted session cannot stream: only the end, numbered 0.
        #expect(stream == [OutputStreamEntry(kind: .end, sequence: 0, data: Array("done".utf8))])
    }

    @Test func aJobWithoutStreamNeitherAsksNorPublishes() async throws {
        let (stream, _, request) = try await run(#"{"id":"n","command":"echo hi"}"#)
        #expect(request?.streamOutput == false)
        #expect(stream == nil)
    }

    @Test func judgeModeIsNotStreamedAndTheStreamSaysSo() async throws {
        let (stream, _, request) = try await run(#"{"id":"j","command":"cat","stream":true,"tests":[{"stdin":"1"}]}"#)
        #expect(request?.streamOutput == false)
        #expect(stream?.map(\.kind) == [.notice, .end])
        #expect(stream?.first.map { String(decoding: $0.data, as: UTF8.self) }?.hasPrefix("judge mode does not stream output") == true)
    }

    @Test func anAgentOlderThanRevision3IsNotAskedAndTheStreamSaysSo() async throws {
        let (stream, statuses, request) = try await run(
            #"{"id":"o","command":"echo hi","stream":true}"#, hello: AgentHello(agentVersion: "judge", kernel: "none", revision: 2))
        #expect(request?.streamOutput == false)
        #expect(statuses.prefix(3) == ["received", "running", "done"])
        #expect(stream?.map(\.kind) == [.notice, .end])
        #expect(stream?.first.map { String(decoding: $0.data, as: UTF8.self) }?.contains("revision 2 and cannot stream") == true)
    }

    @Test func aVMThatFailsToBootEndsTheStreamWithFailed() async throws {
        let driver = ScriptedDriver(bootError: VMError(.bootTimeout, "no hello"))
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(WorkerFixtures.configuration(), queue: queue, driver: driver)
        await runner.run(try await WorkerFixtures.claim(#"{"id":"b","command":"true","stream":true}"#, from: queue))
        #expect(await queue.outputStreams["b"] == [OutputStreamEntry(kind: .end, sequence: 0, data: Array("failed".utf8))])
    }
}
