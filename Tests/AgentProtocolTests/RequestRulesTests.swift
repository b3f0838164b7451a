import AgentProtocol
import Foundation
import Testing

/// One rule of ``RequestRules`` as a test case: a request right at its boundary (accepted) and one just
/// beyond it (refused with `reason`).
struct RuleCase: CustomTestStringConvertible, Sendable {
    var name: String
    var boundary: RunRequest
    var violation: RunRequest
    var reason: String
    var testDescription: String { name }

    /// Every rule the agent applies, each from both sides where it has two.
    static let all: [RuleCase] = {
        func request(
            id: String = "rule", _ workload: Workload = .shell(command: "true"), stdin: Data = Data(),
            wall: Int = 5000, memory: Int = 64 << 20, processes: Int = 16, output: Int = 1024
        ) -> RunRequest {
            RunRequest(
                id: id, workload: workload, stdin: stdin,
                limits: ResourceLimits(wallTimeMilliseconds: wall, memoryBytes: memory, maxProcesses: processes, maxOutputBytesPerStream: output))
        }
        // `true #xxx…`: a comment padded to exactly `bytes`, so the boundary command also proves it can be exec'd.
        func padded(_ bytes: Int) -> String { "true #" + String(repeating: "x", count: bytes - 6) }
        let rules = RequestRules.self
        return [
            RuleCase(name: "id length", boundary: request(id: String(repeating: "i", count: rules.maximumIDBytes)),
                     violation: request(id: String(repeating: "i", count: rules.maximumIDBytes + 1)),
                     reason: "field 'id' must be at most 256 bytes"),
            RuleCase(name: "id empty", boundary: request(id: "i"), violation: request(id: ""),
                     reason: "field 'id' must not be empty"),
            RuleCase(name: "id control character", boundary: request(id: "job 7 ~ é"), violation: request(id: "job\n7"),
                     reason: "field 'id' must not contain control characters"),
            RuleCase(name: "command length", boundary: request(.shell(command: padded(rules.maximumCommandBytes))),
                     violation: request(.shell(command: padded(rules.maximumCommandBytes + 1))),
                     reason: "field 'command' must be at most 131071 bytes"),
            RuleCase(name: "command NUL", boundary: request(.shell(command: "echo a\u{1}b")),
                     violation: request(.shell(command: "echo a\u{0}b")),
                     reason: "field 'command' must not contain a NUL byte"),
            RuleCase(name: "source length", boundary: request(.program(language: .bash, source: padded(rules.maximumSourceBytes))),
                     violation: request(.program(language: .bash, source: padded(rules.maximumSourceBytes + 1))),
                     reason: "field 'code' must be at most 1048576 bytes"),
            RuleCase(name: "stdin size", boundary: request(stdin: Data(count: rules.maximumStdinBytes)),
                     violation: request(stdin: Data(count: rules.maximumStdinBytes + 1)),
                     reason: "field 'stdin' must be at most 16777216 bytes"),
            RuleCase(name: "wall time minimum", boundary: request(wall: 1), violation: request(wall: 0),
                     reason: "field 'limits.wall_time_ms' must be at least 1"),
            RuleCase(name: "wall time maximum", boundary: request(wall: 900_000), violation: request(wall: 900_001),
                     reason: "field 'limits.wall_time_ms' must be at most 900000"),
            RuleCase(name: "memory minimum", boundary: request(memory: 16 << 20), violation: request(memory: (16 << 20) - 1),
                     reason: "field 'limits.memory_bytes' must be at least 16777216"),
            RuleCase(name: "memory maximum", boundary: request(memory: 16 << 30), violation: request(memory: (16 << 30) + 1),
                     reason: "field 'limits.memory_bytes' must be at most 17179869184"),
            RuleCase(name: "processes minimum", boundary: request(processes: 1), violation: request(processes: 0),
                     reason: "field 'limits.processes' must be at least 1"),
            RuleCase(name: "processes maximum", boundary: request(processes: 4096), violation: request(processes: 4097),
                     reason: "field 'limits.processes' must be at most 4096"),
            RuleCase(name: "output minimum", boundary: request(output: 0), violation: request(output: -1),
                     reason: "field 'limits.output_bytes' must be at least 0"),
            RuleCase(name: "output maximum", boundary: request(output: 8 << 20), violation: request(output: (8 << 20) + 1),
                     reason: "field 'limits.output_bytes' must be at most 8388608"),
        ]
    }()
}

@Suite struct RequestRulesTests {
    @Test(arguments: RuleCase.all)
    func eachRuleAcceptsItsBoundaryAndNamesTheFieldBeyondIt(_ rule: RuleCase) {
        #expect(RequestRules.problem(request: rule.boundary) == nil)
        #expect(RequestRules.problem(request: rule.violation) == rule.reason)
    }

    @Test func theDefaultLimitsAndAPlainRequestPass() {
        #expect(RequestRules.problem(limits: ResourceLimits()) == nil)
        #expect(RequestRules.problem(request: RunRequest(id: "666", workload: .shell(command: "uname -a"))) == nil)
    }

    /// The worker lowers a request above an operator maximum to that maximum, so what a job asks for
    /// is held to the minimums only; the limits a request is sent with, to the whole range.
    @Test func requestedLimitsAreHeldToTheMinimumsOnly() {
        #expect(RequestRules.problem(requestedMemoryBytes: 1) == "field 'limits.memory_bytes' must be at least 16777216")
        #expect(RequestRules.problem(requestedMemoryBytes: 16 << 20) == nil)
        #expect(RequestRules.problem(requestedMemoryBytes: 1 << 40) == nil)
        #expect(RequestRules.problem(memoryBytes: 1 << 40) == "field 'limits.memory_bytes' must be at most 17179869184")
        #expect(RequestRules.problem(requestedMemoryMiB: 15) == "field 'limits.memory_mb' must be at least 16")
        #expect(RequestRules.problem(requestedMemoryMiB: 16) == nil)
        #expect(RequestRules.problem(requestedWallTimeMilliseconds: 0) == "field 'limits.wall_time_ms' must be at least 1")
        #expect(RequestRules.problem(requestedWallTimeMilliseconds: 10_000_000) == nil)
        #expect(RequestRules.problem(requestedTimeoutMilliseconds: 0) == "field 'timeout_ms' must be at least 1")
        #expect(RequestRules.problem(requestedTimeoutMilliseconds: 10_000_000) == nil)
        #expect(RequestRules.problem(requestedProcesses: 0) == "field 'limits.processes' must be at least 1")
        #expect(RequestRules.problem(requestedProcesses: 100_000) == nil)
        #expect(RequestRules.problem(requestedOutputBytes: -1) == "field 'limits.output_bytes' must be at least 0")
        #expect(RequestRules.problem(requestedOutputBytes: 1 << 40) == nil)
    }

    @Test func sizeAndCharacterRulesTakeTheJobsOwnTypes() {
        // A job's stdin is bytes ([UInt8]); a request's is Data: the same rule for both.
        #expect(RequestRules.problem(stdin: [UInt8](repeating: 0, count: RequestRules.maximumStdinBytes)) == nil)
        #expect(RequestRules.problem(stdin: Data(count: RequestRules.maximumStdinBytes + 1)) == "field 'stdin' must be at most 16777216 bytes")
        // Bytes, not characters: 'é' is two UTF-8 bytes.
        #expect(RequestRules.problem(id: String(repeating: "é", count: 128)) == nil)
        #expect(RequestRules.problem(id: String(repeating: "é", count: 129)) == "field 'id' must be at most 256 bytes")
        // C1 controls and DEL count as control characters; a NUL in a program's source is the compiler's business.
        #expect(RequestRules.problem(id: "a\u{85}") == "field 'id' must not contain control characters")
        #expect(RequestRules.problem(id: "a\u{7F}") == "field 'id' must not contain control characters")
        // The check reads UTF-8 bytes: the C1 range's edges, and the characters around it that share its lead byte.
        #expect(RequestRules.problem(id: "a\u{80}b") == "field 'id' must not contain control characters")
        #expect(RequestRules.problem(id: "a\u{9F}") == "field 'id' must not contain control characters")
        #expect(RequestRules.problem(id: "\u{1F}") == "field 'id' must not contain control characters")
        #expect(RequestRules.problem(id: "a\u{A0}\u{BF}é\u{7E}\u{20}\u{C2}\u{1080}\u{10080}") == nil)
        #expect(RequestRules.problem(source: "print(1)\u{0}") == nil)
        #expect(RequestRules.problem(workload: .shell(command: "a\u{0}")) == "field 'command' must not contain a NUL byte")
    }

    /// The frame limit must hold the largest request the rules allow, as the agent will see it.
    @Test func theLargestAllowedRequestFitsTheAgentsFrameLimit() throws {
        let largest = RunRequest(
            id: String(repeating: "i", count: RequestRules.maximumIDBytes),
            workload: .program(language: .python, source: String(repeating: "\u{1}", count: RequestRules.maximumSourceBytes)),
            stdin: Data(count: RequestRules.maximumStdinBytes))
        #expect(RequestRules.problem(request: largest) == nil)
        let frame = try AgentFrame.encode(.run(largest))
        #expect(frame.count - 8 <= RequestRules.maximumRequestPayloadBytes)
    }
}

/// The real agent (host test mode) against every rule: the violation is answered `invalid_request`
/// with exactly the rule's reason, the boundary runs. This is what ties the agent to ``RequestRules``.
@Suite(.serialized, .enabled(if: HostAgent.binaryPath != nil, "codebench-agent is not built next to the test bundle"))
struct AgentRequestRulesTests {
    @Test func theAgentRefusesEachViolationWithTheRulesReasonAndRunsEachBoundary() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        for rule in RuleCase.all {
            try agent.send(try AgentFrame.encode(.run(rule.violation)))
            switch try agent.receive() {
            case .error(let reply):
                #expect(reply.code == .invalidRequest, "\(rule.name)")
                #expect(reply.message == "request \(rule.violation.id): \(rule.reason)", "\(rule.name)")
            case let other:
                Issue.record("\(rule.name): the violation was not refused, got \(other)")
            }

            try agent.send(try AgentFrame.encode(.run(rule.boundary)))
            switch try agent.receive() {
            case .result(let result):
                #expect(result.id == rule.boundary.id, "\(rule.name)")
                // A 1 ms wall limit may strike before `true` exits; anything but the agent failing is fine.
                #expect(result.verdict == .ok || result.verdict == .timeLimit, "\(rule.name): \(result.verdict) \(result.message ?? "")")
            case let other:
                Issue.record("\(rule.name): the boundary was not run, got \(other)")
            }
        }
    }
}
