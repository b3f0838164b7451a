import Foundation
import TestSupport
import Testing

@testable import Worker

/// Priorities through a real worker and real VMs (docs/reliability.md, "Priorities").
@Suite("Intake priorities", .serialized)
struct PriorityJobTests {
    @Test("with the worker busy, jobs pushed later onto jobs:high run before those waiting on jobs")
    func highRunsFirst() async throws {
        try await WorkerHarness.with(configure: { $0.intakeLists = ["jobs:high", "jobs"] }) { harness in
            try harness.push(#"{"id":"busy","command":"sleep 2"}"#)
            let running = try await eventually(timeout: .seconds(60)) {
                try harness.redisCLI("LRANGE", "busy", "0", "-1").contains("running")
            }
            try #require(running, "job busy never reported running")
            for id in ["low1", "low2"] { try harness.push(#"{"id":"\#(id)","command":"echo \#(id)"}"#, list: "jobs") }
            for id in ["high1", "high2"] { try harness.push(#"{"id":"\#(id)","command":"echo \#(id)"}"#, list: "jobs:high") }

            var finished: [(id: String, at: Int)] = []
            for id in ["busy", "low1", "low2", "high1", "high2"] {
                let elements = try await harness.readStatuses(id)
                #expect(elements.prefix(3) == ["received", "running", "done"], "job \(id): \(elements)")
                finished.append((id, WorkerHarness.result(elements)["finished_at_ms"] as? Int ?? 0))
            }
            // One VM at a time: the order they finished in is the order they ran in.
            #expect(finished.sorted { $0.at < $1.at }.map(\.id) == ["busy", "high1", "high2", "low1", "low2"])
        }
    }

    @Test("intake-lists is read, in order, and refuses empty names and duplicates")
    func setting() throws {
        let configuration = try WorkerConfigurationLoader(flags: ["intake-lists": "jobs:high, jobs"]).load()
        #expect(configuration.intakeLists == ["jobs:high", "jobs"])
        #expect(configuration.queueConfiguration(workerID: "w").intakeLists == ["jobs:high", "jobs"])
        #expect(configuration.intakeList == "jobs:high")
        #expect(try WorkerConfigurationLoader().load().intakeLists == ["jobs"])

        #expect {
            _ = try WorkerConfigurationLoader(flags: ["intake-lists": "jobs:high,,jobs"]).load()
        } throws: { error in
            (error as? WorkerConfigurationError)?.message.contains("none of them empty") == true
        }
        var duplicate = WorkerConfiguration()
        duplicate.intakeLists = ["jobs", "jobs:high", "jobs"]
        #expect {
            try duplicate.validate()
        } throws: { error in
            (error as? WorkerConfigurationError)?.message == "intake-lists names 'jobs' twice"
        }
        var clash = WorkerConfiguration()
        clash.intakeLists = ["jobs:high", "jobs:invalid"]
        #expect(throws: WorkerConfigurationError.self) { try clash.validate() }
    }
}
