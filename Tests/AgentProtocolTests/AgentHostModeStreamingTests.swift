import AgentProtocol
import Foundation
import Testing

/// Revision 3 in the real agent (host test mode): a streamed run's output chunks, before its result.
@Suite(.serialized, .enabled(if: HostAgent.binaryPath != nil, "codebench-agent is not built next to the test bundle"))
struct AgentHostModeStreamingTests {
    /// Sends `request` and returns every output chunk that came before its result, and the result.
    static func stream(_ agent: HostAgent, _ request: RunRequest) throws -> ([OutputChunk], RunResult) {
        try agent.send(try AgentFrame.encode(.run(request)))
        var chunks: [OutputChunk] = []
        while true {
            switch try agent.receive() {
            case .output(let chunk): chunks.append(chunk)
            case .result(let result): return (chunks, result)
            case let other: throw HostAgentError(message: "expected output or a result, got \(other)")
            }
        }
    }

    static func streamed(_ id: String, _ workload: Workload, limits: ResourceLimits = ResourceLimits()) -> RunRequest {
        var request = RunRequest(id: id, workload: workload, limits: limits)
        request.streamOutput = true
        return request
    }

    /// Chunks of `stream`, checked contiguous from 0, concatenated.
    static func joined(_ chunks: [OutputChunk], _ stream: OutputStreamKind) -> Data {
        var data = Data()
        for chunk in chunks where chunk.stream == stream {
            #expect(chunk.offset == data.count, "\(stream) chunk at \(chunk.offset) after \(data.count) bytes")
            data.append(chunk.data)
        }
        return data
    }

    @Test func sendsOutputWhileTheProgramRunsThenTheResultWithAllOfIt() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let (chunks, result) = try Self.stream(
            agent, Self.streamed("s1", .shell(command: "echo one; sleep 1; echo two; echo err >&2")))
        #expect(result.verdict == .ok)
        #expect(String(decoding: result.stdout, as: UTF8.self) == "one\ntwo\n")
        #expect(chunks.allSatisfy { $0.id == "s1" && !$0.data.isEmpty })
        // "one" went out on its own, before the program slept: output is sent while it runs.
        #expect(chunks.first { $0.stream == .stdout }.map { String(decoding: $0.data, as: UTF8.self) } == "one\n")
        #expect(Self.joined(chunks, .stdout) == result.stdout)
        #expect(Self.joined(chunks, .stderr) == result.stderr)
    }

    @Test func aFloodIsStreamedOnlyUpToTheOutputLimitInBoundedChunks() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let limit = 300_000
        let (chunks, result) = try Self.stream(
            agent, Self.streamed("flood", .shell(command: "yes"), limits: ResourceLimits(wallTimeMilliseconds: 5000, maxOutputBytesPerStream: limit)))
        #expect(result.verdict == .outputLimit)
        #expect(result.stdout.count == limit)
        #expect(chunks.allSatisfy { $0.data.count <= OutputChunk.maximumDataBytes })
        #expect(Self.joined(chunks, .stdout) == result.stdout)
    }

    @Test func sendsNoChunksUnlessAskedAndKeepsServing() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let (none, plain) = try Self.stream(agent, RunRequest(id: "p", workload: .shell(command: "echo quiet")))
        #expect(none.isEmpty)
        #expect(String(decoding: plain.stdout, as: UTF8.self) == "quiet\n")
        let (chunks, streamed) = try Self.stream(agent, Self.streamed("s2", .shell(command: "printf abc")))
        #expect(Self.joined(chunks, .stdout) == Data("abc".utf8))
        #expect(streamed.verdict == .ok)
    }

    /// Only the run step streams: a compile's diagnostics are not the program's output.
    @Test func aCompileStepIsNotStreamed() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let source = "#include <stdio.h>\n#warning noisy\nint main(void) { puts(\"ran\"); return 0; }"
        let (chunks, result) = try Self.stream(agent, Self.streamed("c", .program(language: .c, source: source)))
        #expect(result.verdict == .ok, "\(result.message ?? "")")
        #expect(Self.joined(chunks, .stdout) == Data("ran\n".utf8))
        #expect(Self.joined(chunks, .stderr).isEmpty)
    }
}
