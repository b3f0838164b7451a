import AgentProtocol
import FoundationEssentials
import Testing

@Suite struct FramingTests {
    @Test func roundTripsEveryMessageOneByteAtATime() throws {
        let messages: [AgentMessage] = [
            .hello(AgentHello(agentVersion: "1", kernel: "Linux 6.1")),
            .run(RunRequest(id: "666", workload: .shell(command: "uname -a"), stdin: Data([0, 1, 255]))),
            .run(RunRequest(id: "7", workload: .program(language: .python, source: "print(6*7)"))),
            .result(RunResult(id: "7", verdict: .ok, exitCode: 0, signal: nil, stdout: Data("42\n".utf8), stderr: Data(),
                              stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 3,
                              cpuTimeMilliseconds: 2, peakMemoryBytes: 1024)),
            .error(AgentErrorReply(code: .malformedFrame, message: "x")),
            .shutdown,
        ]
        #expect(try decodedOneByteAtATime(messages) == messages)
    }

    @Test func rejectsBadMagicVersionSizeAndPayload() throws {
        var badMagic = AgentFrameDecoder()
        badMagic.append([0x58, 0x42, 0x41, 1, 0, 0, 0, 0])
        #expect(throws: AgentFrameError(.badMagic, "stream is not at a frame boundary")) { try badMagic.next() }

        var badVersion = AgentFrameDecoder()
        badVersion.append([0x43, 0x42, 0x41, 9, 0, 0, 0, 0])
        #expect { try badVersion.next() } throws: { ($0 as? AgentFrameError)?.code == .unsupportedVersion }

        var tooLarge = AgentFrameDecoder(maximumPayload: 16)
        tooLarge.append([0x43, 0x42, 0x41, 1, 0, 0, 0, 17])
        #expect { try tooLarge.next() } throws: { ($0 as? AgentFrameError)?.code == .tooLarge }

        var garbage = AgentFrameDecoder()
        garbage.append([0x43, 0x42, 0x41, 1, 0, 0, 0, 2, 0x7B, 0x7D])
        #expect { try garbage.next() } throws: { ($0 as? AgentFrameError)?.code == .invalidPayload }
    }
}
