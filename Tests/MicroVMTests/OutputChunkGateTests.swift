import AgentProtocol
import FoundationEssentials
import Logging
import Synchronization
import Testing

@testable import MicroVM

/// The host's check of a streamed run's chunks: a guest is not trusted to send them in order, for its own
/// request, or within the output limit.
@Suite struct OutputChunkGateTests {
    @Test func forwardsChunksInLineAndDropsAStreamFromItsFirstBadChunkOn() {
        let forwarded = Mutex<[OutputChunk]>([])
        let request = RunRequest(id: "r", workload: .shell(command: "true"), limits: ResourceLimits(maxOutputBytesPerStream: 10))
        let gate = OutputChunkGate(request: request, logger: Logger(label: "test.gate")) { chunk in
            forwarded.withLock { $0.append(chunk) }
        }
        func chunk(_ stream: OutputStreamKind, _ offset: Int, _ text: String, id: String = "r") -> OutputChunk {
            OutputChunk(id: id, stream: stream, offset: offset, data: Data(text.utf8))
        }
        gate.admit(chunk(.stdout, 0, "abcd"))
        gate.admit(chunk(.stderr, 0, "e"))
        gate.admit(chunk(.stdout, 4, "efgh"))
        gate.admit(chunk(.stdout, 8, "ijk"))  // past the limit of 10: stdout is refused from here on
        gate.admit(chunk(.stdout, 8, "ij"))  // would fit, but the stream is already refused
        gate.admit(chunk(.stderr, 1, "x", id: "other"))  // another request's: stderr is refused too
        gate.admit(chunk(.stderr, 1, "f"))
        #expect(forwarded.withLock { $0 } == [chunk(.stdout, 0, "abcd"), chunk(.stderr, 0, "e"), chunk(.stdout, 4, "efgh")])
    }
}
