import AgentProtocol
import FoundationEssentials
import MicroVM
import Synchronization
import Testing

/// A streamed run over a real socket against a guest that floods output chunks, in and out of the rules.
extension AgentConnectionTests {
    @Test func aFloodOfChunksReachesTheHandlerWithinTheRulesAndTheResultStillArrives() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { request in
            // Far more chunks than the mailbox holds (8), then hostile ones, then the result.
            var actions: [FakeAgentPeer.Action] = (0..<2000).map { index in
                .frame(.output(OutputChunk(id: request.id, stream: .stdout, offset: index * 10, data: Data(repeating: 0x79, count: 10))))
            }
            actions.append(.frame(.output(OutputChunk(id: "someone-else", stream: .stderr, offset: 0, data: Data("x".utf8)))))
            actions.append(.frame(.output(OutputChunk(id: request.id, stream: .stdout, offset: 20_000, data: Data(repeating: 0x79, count: 30_000)))))
            actions.append(.frame(.output(OutputChunk(id: request.id, stream: .stdout, offset: 20_000, data: Data("late".utf8)))))
            actions.append(.frame(.result(FakeAgentPeer.result(for: request, stdout: "done\n"))))
            return actions
        }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let received = Mutex<(chunks: Int, bytes: Int)>((0, 0))
            let result = try await connection.run(request("flood", outputLimit: 40_000), timeout: .seconds(20)) { chunk in
                received.withLock { $0 = ($0.chunks + 1, $0.bytes + chunk.data.count) }
            }
            #expect(result.id == "flood")
            // 2000 chunks in line; the other request's, the one past the limit and everything after it on stdout are dropped.
            #expect(received.withLock { $0.chunks } == 2000)
            #expect(received.withLock { $0.bytes } == 20_000)

            // Chunks nobody asked for (no handler) are dropped, and the connection keeps working.
            let plain = try await connection.run(request("plain"), timeout: .seconds(20))
            #expect(plain.id == "plain")
            await connection.close()
        }
    }
}
