import AgentProtocol
import FoundationEssentials
import Testing

/// Revision 3: the `output` message and `streamOutput`, on the wire and against hostile values.
@Suite struct OutputChunkTests {
    @Test func roundTripsAnOutputChunkAndAStreamedRunOneByteAtATime() throws {
        var streamed = RunRequest(id: "s", workload: .shell(command: "echo hi"))
        streamed.streamOutput = true
        let messages: [AgentMessage] = [
            .run(streamed),
            .output(OutputChunk(id: "s", stream: .stdout, offset: 0, data: Data("hi\n".utf8))),
            .output(OutputChunk(id: "s", stream: .stderr, offset: 7, data: Data([0, 0xff, 0xc3]))),
        ]
        #expect(try decodedOneByteAtATime(messages) == messages)
    }

    @Test func theOutputMessageHasTheDocumentedShape() throws {
        let json = String(decoding: try JSONEncoder().encode(
            AgentMessage.output(OutputChunk(id: "job-42", stream: .stdout, offset: 0, data: Data("one\n".utf8)))), as: UTF8.self)
        for part in [#""output":{"_0":{"#, #""id":"job-42""#, #""stream":"stdout""#, #""offset":0"#, #""data":"b25lCg==""#] {
            #expect(json.contains(part), "\(json)")
        }
    }

    /// A request that does not stream encodes as before revision 3 (no key), and one without the key decodes as not streamed.
    @Test func streamOutputIsOmittedWhenFalseAndDefaultsToFalse() throws {
        var request = RunRequest(id: "a", workload: .shell(command: "true"))
        let plain = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        #expect(!plain.contains("streamOutput"))
        #expect(try JSONDecoder().decode(RunRequest.self, from: Data(plain.utf8)).streamOutput == false)
        request.streamOutput = true
        let streamed = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        #expect(streamed.contains(#""streamOutput":true"#))
        #expect(try JSONDecoder().decode(RunRequest.self, from: Data(streamed.utf8)).streamOutput)
        // Streaming needs no other revision's fields: an older agent can still run the job, without chunks.
        #expect(request.requiredRevision == 1)
    }

    @Test func payloadsThatAreNotAChunkDoNotDecode() {
        let hostile = [
            #"{"output":{"_0":{"id":"x","stream":"stdin","offset":0,"data":"eA=="}}}"#,  // no such stream
            #"{"output":{"_0":{"id":"x","stream":"stdout","offset":"0","data":"eA=="}}}"#,  // offset as a string
            #"{"output":{"_0":{"id":"x","stream":"stdout","offset":0,"data":"not base64!"}}}"#,
            #"{"output":{"_0":{"id":"x","stream":"stdout","offset":1e400,"data":"eA=="}}}"#,
            #"{"output":{"_0":{"id":"x","stream":"stdout","data":"eA=="}}}"#,  // no offset
            #"{"output":{"_0":{"stream":"stdout","offset":0,"data":"eA=="}}}"#,  // no id
            #"{"output":{"_0":{"id":"x","stream":"stdout","offset":99999999999999999999,"data":"eA=="}}}"#,
        ]
        for json in hostile {
            var decoder = AgentFrameDecoder()
            let payload = Array(json.utf8)
            decoder.append(AgentFrame.magic + [agentProtocolVersion, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)] + payload)
            #expect(throws: AgentFrameError.self, "\(json)") { try decoder.next() }
        }
    }

    @Test func theHostRulesRefuseChunksOutOfLine() {
        func chunk(_ offset: Int, _ count: Int, id: String = "job") -> OutputChunk {
            OutputChunk(id: id, stream: .stdout, offset: offset, data: Data(repeating: 0x41, count: count))
        }
        #expect(chunk(0, 10).problem(expectedID: "job", expectedOffset: 0, limit: 100) == nil)
        #expect(chunk(90, 10).problem(expectedID: "job", expectedOffset: 90, limit: 100) == nil)
        #expect(chunk(0, 1, id: "other").problem(expectedID: "job", expectedOffset: 0, limit: 100) == "an output chunk for another request")
        #expect(chunk(5, 1).problem(expectedID: "job", expectedOffset: 0, limit: 100) == "an output chunk of stdout at offset 5, expected 0")
        #expect(chunk(-1, 1).problem(expectedID: "job", expectedOffset: 0, limit: 100) == "an output chunk of stdout at offset -1, expected 0")
        #expect(chunk(0, 0).problem(expectedID: "job", expectedOffset: 0, limit: 100) == "an empty output chunk of stdout")
        #expect(chunk(95, 10).problem(expectedID: "job", expectedOffset: 95, limit: 100)
            == "an output chunk taking stdout past the output limit of 100 bytes")
        #expect(chunk(0, OutputChunk.maximumDataBytes + 1).problem(expectedID: "job", expectedOffset: 0, limit: 1 << 30)
            == "an output chunk of 65537 bytes, the maximum is 65536")
        // An offset near Int.max must not overflow into a small end.
        #expect(chunk(Int.max, 2).problem(expectedID: "job", expectedOffset: Int.max, limit: 100)
            == "an output chunk taking stdout past the output limit of 100 bytes")
    }

    @Test func anAgentStreamsFromRevision3On() {
        #expect((AgentHello(agentVersion: "new", kernel: "k").revision ?? 0) >= 3)
        #expect(AgentHello(agentVersion: "new", kernel: "k").streamsOutput)
        #expect(!AgentHello(agentVersion: "judge", kernel: "k", revision: 2).streamsOutput)
        #expect(!AgentHello(agentVersion: "old", kernel: "k", revision: nil).streamsOutput)
    }
}
