import AgentProtocol
import JobQueue
import MicroVM
import Testing

@testable import Worker

/// An image built before judge mode has an agent of revision 1, which decodes the fields it does not know
/// as absent: sent a judge job it would run the program once and report it `ok`. The host refuses instead.
@Suite("Agent revision")
struct AgentRevisionTests {
    static let revision1 = AgentHello(agentVersion: "old", kernel: "none", revision: nil)

    func run(_ payload: String, hello: AgentHello) async throws -> (statuses: [String], driver: ScriptedDriver) {
        let driver = ScriptedDriver(hello: hello)
        let queue = InMemoryJobQueue()
        let (runner, _) = WorkerFixtures.runner(WorkerFixtures.configuration(), queue: queue, driver: driver)
        let claimed = try await WorkerFixtures.claim(payload, from: queue)
        await runner.run(claimed)
        #expect(await queue.processing.isEmpty)
        return (await queue.statusLists[claimed.id ?? ""] ?? [], driver)
    }

    @Test("a judge job on a revision 1 agent fails naming its fields, and nothing is sent to the agent")
    func judgeJobRefused() async throws {
        let payload = #"{"id":"j","command":"cat","args":["x"],"limits":{"cpu_time_ms":500},"tests":[{"stdin":"1","expected_output":"1"}]}"#
        let (statuses, driver) = try await run(payload, hello: Self.revision1)
        #expect(
            statuses.prefix(3) == [
                "received", "failed",
                "the guest agent speaks protocol revision 1, and this job's tests, args, limits.cpu_time_ms need revision 2 "
                    + "(an older agent would ignore them): the worker's guest image needs rebuilding with the current agent "
                    + "(scripts/build-guest-image)",
            ])
        #expect(driver.requests.isEmpty, "the request reached an agent that would ignore its judge fields")
        #expect(driver.live == 0)
    }

    @Test("each revision 2 field alone is refused on a revision 1 agent", arguments: [
        (#"{"id":"f","language":"python","files":[{"name":"main.py","content":"print(1)"}]}"#, "files, entry"),
        (#"{"id":"s","command":"true","limits":{"max_file_size_mb":1}}"#, "limits.max_file_size_mb"),
        (#"{"id":"c","language":"c","code":"int main(){}","limits":{"compile_wall_time_ms":5000,"compile_memory_mb":200}}"#,
         "limits.compile_wall_time_ms, limits.compile_memory_mb"),
    ])
    func fieldsNamed(_ example: (payload: String, fields: String)) async throws {
        let (statuses, driver) = try await run(example.payload, hello: Self.revision1)
        #expect(statuses.dropFirst().first == "failed")
        #expect(statuses.dropFirst(2).first?.contains("this job's \(example.fields) need revision 2") == true, "\(statuses)")
        #expect(driver.requests.isEmpty)
    }

    @Test("a job of revision 1 still runs on a revision 1 agent; a judge job runs on a revision 2 agent")
    func compatibleRuns() async throws {
        let (old, oldDriver) = try await run(#"{"id":"p","language":"python","code":"print(1)","stdin":"x"}"#, hello: Self.revision1)
        #expect(old.prefix(3) == ["received", "running", "done"])
        #expect(oldDriver.requests.count == 1)
        let current = AgentHello(agentVersion: "new", kernel: "none")
        let (new, newDriver) = try await run(#"{"id":"q","command":"cat","tests":[{"stdin":"1"}]}"#, hello: current)
        #expect(new.prefix(2) == ["received", "running"])
        #expect(newDriver.requests.first?.judge?.tests.count == 1)
    }
}
