import AgentProtocol
import Foundation
import Judging
import Testing

/// The agent's JSON (``WireJSON``) against Foundation's, which the host uses: each reads what the
/// other writes, message for message, and hostile bytes give errors, never a trap.
struct WireJSONTests {
    static let awkward = "quote \" backslash \\ slash / tab \t newline \n nul-free control \u{1} é 漢 🙂"

    static let hostMessages: [AgentMessage] = [
        .shutdown,
        .resume(AgentResume(nonce: "n-1", unixTimeNanoseconds: 1_796_555_121_388_578_000, entropy: Data((0..<64).map { UInt8($0 * 3 % 256) }))),
        .resume({
            var resume = AgentResume(nonce: "n-2", unixTimeNanoseconds: 1, entropy: Data(repeating: 7, count: 32))
            resume.tracePhases = true
            return resume
        }()),
        .run(RunRequest(id: "plain", workload: .shell(command: "true"))),
        .run({
            var request = RunRequest(
                id: awkward, workload: .shell(command: "echo \(awkward)"), stdin: Data([0, 255, 10, 13]),
                limits: ResourceLimits(
                    wallTimeMilliseconds: 1, memoryBytes: Int(Int32.max) * 4, maxProcesses: 2, maxOutputBytesPerStream: 3, cpuTimeMilliseconds: 4,
                    maxFileSizeBytes: 5, compileWallTimeMilliseconds: 6, compileMemoryBytes: 7),
                files: [WorkFile(name: "dir/a.txt", content: Data("a\u{0}b".utf8)), WorkFile(name: "empty", content: Data())],
                arguments: ["", "two words", awkward], compilerOptions: ["-O2"])
            request.streamOutput = true
            request.tracePhases = true
            request.prepareNextRequest = true
            request.nextRequestLimits = ResourceLimits(memoryBytes: 128 << 20, maxProcesses: 9, cpuTimeMilliseconds: 11)
            request.preparedRequests = 2
            request.prepareForkServers = true
            return request
        }()),
        .run(RunRequest(id: "program", workload: .program(language: .python, source: "print('hi')\n"))),
        .run(RunRequest(
            id: "judge", workload: .project(language: .cpp, entry: "main.cpp"),
            judge: JudgeSpec(
                tests: [
                    TestCase(name: "1", stdin: Data("1 2\n".utf8), expectedOutput: Data("3\n".utf8), limits: ResourceLimits(cpuTimeMilliseconds: 500)),
                    TestCase(name: "second", arguments: ["x"], limits: ResourceLimits()),
                ],
                comparison: .float(epsilon: 1e-6), checker: CheckerSpec(language: .python, source: "import sys\n"), stopOnFailure: true,
                caseOutputBytes: 100, checkerLimits: ResourceLimits(wallTimeMilliseconds: 2000)))),
        .run(RunRequest(id: "judge-plain", workload: .shell(command: "cat"), judge: JudgeSpec(tests: [TestCase(name: "a", limits: ResourceLimits())]))),
    ]

    static let agentMessages: [AgentMessage] = [
        .hello(AgentHello(agentVersion: "0.1.0", kernel: "Linux 6.1 x86_64")),
        .hello(AgentHello(agentVersion: awkward, kernel: "k", resumeNonce: "n-1", revision: nil)),
        .hello({
            var hello = AgentHello(agentVersion: "0.1.0", kernel: "k", resumeNonce: "n-2")
            hello.phases = [AgentPhase(name: "decode", microseconds: 1), AgentPhase(name: "CRNG reseeded", microseconds: 23_456)]
            return hello
        }()),
        .error(AgentErrorReply(code: .invalidRequest, message: awkward)),
        .output(OutputChunk(id: "job", stream: .stderr, offset: 65536, data: Data([0, 1, 2, 254]))),
        .result(RunResult(
            id: "r", verdict: .ok, exitCode: 0, signal: nil, stdout: Data(), stderr: Data("e".utf8), stdoutTruncated: false,
            stderrTruncated: true, wallTimeMilliseconds: 12, cpuTimeMilliseconds: 3, peakMemoryBytes: 456 << 10)),
        .result({
            var result = RunResult(
                id: awkward, verdict: .wrongAnswer, exitCode: nil, signal: 9, stdout: Data((0..<300).map { UInt8($0 % 256) }), stderr: Data(),
                stdoutTruncated: true, stderrTruncated: false, wallTimeMilliseconds: 0, cpuTimeMilliseconds: 0, peakMemoryBytes: 0,
                compileOutput: Data("warning".utf8), message: "case 2: \(awkward)",
                tests: [
                    TestResult(name: "1", verdict: .accepted, exitCode: 0, wallTimeMilliseconds: 5, stdout: Data("3\n".utf8)),
                    TestResult(name: "2", verdict: .timeLimit, signal: 9, stdoutTruncated: true, message: "time limit of 1 s exceeded"),
                ])
            result.phases = [AgentPhase(name: "decode", microseconds: 70_123), AgentPhase(name: "run until exit", microseconds: 0)]
            return result
        }()),
    ]

    @Test func theAgentReadsWhatTheHostWrites() throws {
        for message in Self.hostMessages {
            let foundation = [UInt8](try JSONEncoder().encode(message))
            #expect(try AgentMessage.decodeWire(foundation) == message, "\(String(decoding: foundation, as: UTF8.self))")
        }
    }

    @Test func theHostReadsWhatTheAgentWrites() throws {
        for message in Self.agentMessages + Self.hostMessages {
            let wire = message.encodeWire()
            #expect(try JSONDecoder().decode(AgentMessage.self, from: Data(wire)) == message, "\(String(decoding: wire, as: UTF8.self))")
        }
    }

    @Test func framesRoundTripThroughBothCodecs() throws {
        for message in Self.hostMessages {
            var decoder = AgentFrameDecoder(codec: .compact)
            decoder.append(try AgentFrame.encode(message))
            #expect(try decoder.next() == message)
        }
        for message in Self.agentMessages {
            var decoder = AgentFrameDecoder()
            decoder.append(try AgentFrame.encode(message, codec: .compact))
            #expect(try decoder.next() == message)
        }
    }

    @Test func refusesWhatTheProtocolNeverSends() {
        let refused: [String] = [
            #"{"hello":{"_0":{"protocolVersion":1,"agentVersion":"a","kernel":"k"}}}"#,
            #"{"run":{"_0":{"id":"x"}}}"#,
            #"{"run":{"_0":{"id":"x"}},"shutdown":{}}"#,
            #"{"shutdown":{}} x"#,
            #"{"shutdown":{},"shutdown":{}}"#,
            #"{"resume":{"_0":{"nonce":"n","unixTimeNanoseconds":1.5,"entropy":""}}}"#,
            #"{"resume":{"_0":{"nonce":"n","unixTimeNanoseconds":99999999999999999999,"entropy":""}}}"#,
            #"{"resume":{"_0":{"nonce":"n","unixTimeNanoseconds":01,"entropy":""}}}"#,
            #"{"resume":{"_0":{"nonce":"\ud800","unixTimeNanoseconds":1,"entropy":""}}}"#,
            #"{"resume":{"_0":{"nonce":"\q","unixTimeNanoseconds":1,"entropy":""}}}"#,
            #"{"resume":{"_0":{"nonce":"n","unixTimeNanoseconds":1,"entropy":"not base64!"}}}"#,
            "{\"resume\":{\"_0\":{\"nonce\":\"a\u{1}b\",\"unixTimeNanoseconds\":1,\"entropy\":\"\"}}}",
            String(repeating: "[", count: 100_000),
            "",
            #"{"shutdown":{}"#,
        ]
        for text in refused {
            #expect(throws: WireJSON.Failure.self, "\(text.prefix(80))") { try AgentMessage.decodeWire(Array(text.utf8)) }
        }
        #expect(throws: WireJSON.Failure.self) { try AgentMessage.decodeWire(Array(#"{"hello":{"_0":{}}}"#.utf8)) }
    }

    /// Every prefix and many single-byte changes of valid payloads: an error or a message, never a trap.
    @Test func mutatedPayloadsNeverTrap() throws {
        var generator = SystemRandomNumberGenerator()
        for message in Self.hostMessages {
            let valid = [UInt8](try JSONEncoder().encode(message))
            for end in stride(from: 0, to: valid.count, by: max(1, valid.count / 200)) { _ = try? AgentMessage.decodeWire(Array(valid[..<end])) }
            for _ in 0..<300 {
                var mutated = valid
                mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                _ = try? AgentMessage.decodeWire(mutated)
            }
        }
    }
}
