import AgentProtocol
import FoundationEssentials
import Logging
import MicroVM
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// AgentConnection against a scripted peer on a real Unix socket (no VM).
@Suite(.timeLimit(.minutes(1)))
struct AgentConnectionTests {
    let logger = Logger(label: "test.agent-connection")

    /// Runs `body` with a fake agent on a socket in a fresh temp directory, removed afterwards.
    func withPeer<T>(_ script: FakeAgentPeer.Script, _ body: (FakeAgentPeer) async throws -> T) async throws -> T {
        var template = Array("/tmp/cbq-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let peer = try await FakeAgentPeer.start(at: dir + "/agent.sock", script: script)
        do {
            let value = try await body(peer)
            await peer.stop()
            rmdir(dir)
            return value
        } catch {
            await peer.stop()
            rmdir(dir)
            throw error
        }
    }

    func connect(_ peer: FakeAgentPeer, handshake: AgentHandshake = .none) async throws -> AgentConnection {
        try await AgentConnection.connect(
            unixSocketPath: peer.path, options: .init(handshake: handshake), timeout: .seconds(5), logger: logger)
    }

    func request(_ id: String, outputLimit: Int = 1 << 20) -> RunRequest {
        RunRequest(id: id, workload: .shell(command: "true"), limits: ResourceLimits(maxOutputBytesPerStream: outputLimit))
    }

    @Test func helloThenSeveralRequests() async throws {
        try await withPeer(FakeAgentPeer.Script()) { peer in
            let connection = try await connect(peer)
            defer { Task { await connection.close() } }
            let hello = try await connection.waitForHello(timeout: .seconds(5))
            #expect(hello.agentVersion == "fake-1")
            for id in ["a", "b", "c"] {
                let result = try await connection.run(request(id), timeout: .seconds(5))
                #expect(result.id == id)
                #expect(String(decoding: result.stdout, as: UTF8.self) == "ran \(id)\n")
            }
        }
    }

    @Test func errorReplyBecomesAgentProtocolError() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { _ in [.frame(.error(AgentErrorReply(code: .invalidRequest, message: "no such language")))] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let error = await #expect(throws: VMError.self) { try await connection.run(request("x"), timeout: .seconds(5)) }
            #expect(error?.code == .agentProtocol)
            #expect(error?.message.contains("no such language") == true)
            await connection.close()
        }
    }

    @Test func eofWhileWaitingBecomesAgentUnreachable() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { _ in [.close] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let error = await #expect(throws: VMError.self) { try await connection.run(request("x"), timeout: .seconds(20)) }
            #expect(error?.code == .agentUnreachable)
            await connection.close()
        }
    }

    @Test func oversizedFrameIsRejectedFromItsHeader() async throws {
        var script = FakeAgentPeer.Script()
        // A header announcing 1 GiB and no payload: only the header check can end this quickly.
        script.onRequest = { _ in [.raw(AgentFrame.magic + [agentProtocolVersion, 0x40, 0, 0, 0])] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let error = await #expect(throws: VMError.self) { try await connection.run(request("x"), timeout: .seconds(20)) }
            #expect(error?.code == .agentProtocol)
            #expect(error?.message.contains("exceeds the host limit") == true)
            await connection.close()
        }
    }

    @Test func resultLargerThanTheOutputLimitsAllowIsRejected() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { request in
            [.frame(.result(FakeAgentPeer.result(for: request, stdout: String(repeating: "y", count: 2 << 20))))]
        }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let error = await #expect(throws: VMError.self) {
                try await connection.run(request("x", outputLimit: 4096), timeout: .seconds(20))
            }
            #expect(error?.code == .agentProtocol)
            await connection.close()
        }
    }

    @Test func garbageOnTheChannelIsAProtocolError() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { _ in [.raw(Array("Kernel panic - not syncing".utf8))] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let error = await #expect(throws: VMError.self) { try await connection.run(request("x"), timeout: .seconds(20)) }
            #expect(error?.code == .agentProtocol)
            await connection.close()
        }
    }

    @Test func silentAgentHitsTheHostTimeoutAndTheConnectionIsRetired() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { _ in [] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: VMError.self) { try await connection.run(request("x"), timeout: .milliseconds(300)) }
            #expect(error?.code == .hostTimeout)
            #expect(clock.now - start < .seconds(5))
            // A late answer could be taken for the next request's: the connection refuses further work.
            let second = await #expect(throws: VMError.self) { try await connection.run(request("y"), timeout: .seconds(1)) }
            #expect(second?.message.contains("unusable") == true)
            await connection.close()
        }
    }

    @Test func missingHelloHitsTheBootTimeout() async throws {
        var script = FakeAgentPeer.Script()
        script.greeting = []
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            let error = await #expect(throws: VMError.self) { try await connection.waitForHello(timeout: .milliseconds(200)) }
            #expect(error?.code == .bootTimeout)
            await connection.close()
        }
    }

    @Test func cancellingTheTaskEndsTheWait() async throws {
        var script = FakeAgentPeer.Script()
        script.onRequest = { _ in [] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            let clock = ContinuousClock()
            let start = clock.now
            let task = Task { try await connection.run(request("x"), timeout: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(clock.now - start < .seconds(5))
            await connection.close()
        }
    }

    @Test func connectGivesUpAfterItsTimeoutWhenNothingListens() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: VMError.self) {
            try await AgentConnection.connect(unixSocketPath: "/tmp/cbq-nonexistent-\(getpid()).sock", timeout: .milliseconds(300), logger: logger)
        }
        #expect(error?.code == .agentUnreachable)
        #expect(clock.now - start < .seconds(5))
    }

    @Test func firecrackerHandshakeThenFrames() async throws {
        let lines = Mutex<[String]>([])
        var script = FakeAgentPeer.Script()
        script.handshake = { _, line in
            lines.withLock { $0.append(line) }
            return [.raw(Array("OK 1073741824\n".utf8))]
        }
        try await withPeer(script) { peer in
            let connection = try await connect(peer, handshake: .firecrackerVsock(port: 1024))
            #expect(connection.handshakeHostPort == 1_073_741_824)
            let hello = try await connection.waitForHello(timeout: .seconds(5))
            #expect(hello.kernel == "Linux fake")
            let result = try await connection.run(request("fc"), timeout: .seconds(5))
            #expect(result.id == "fc")
            await connection.close()
        }
        #expect(lines.withLock { $0 } == ["CONNECT 1024"])
    }

    @Test func firecrackerHandshakeRetriesWhileTheGuestDoesNotListen() async throws {
        var script = FakeAgentPeer.Script()
        // Firecracker closes the connection when nothing listens on the guest port yet.
        script.handshake = { connection, _ in connection < 2 ? [.close] : [.raw(Array("OK 77\n".utf8))] }
        try await withPeer(script) { peer in
            let connection = try await connect(peer, handshake: .firecrackerVsock(port: 1024))
            #expect(connection.handshakeHostPort == 77)
            #expect(peer.connectionCount == 3)
            _ = try await connection.waitForHello(timeout: .seconds(5))
            await connection.close()
        }
    }

    @Test func malformedHandshakeReplyFailsAtOnce() async throws {
        var script = FakeAgentPeer.Script()
        script.handshake = { _, _ in [.raw(Array("NOPE what\n".utf8))] }
        try await withPeer(script) { peer in
            let error = await #expect(throws: VMError.self) { try await connect(peer, handshake: .firecrackerVsock(port: 1024)) }
            #expect(error?.code == .agentProtocol)
            #expect(error?.message.contains("NOPE") == true)
            #expect(peer.connectionCount == 1)
        }
    }

    @Test func resultFrameBoundFollowsTheOutputLimit() {
        let small = AgentConnection.maximumResultFrameBytes(for: ResourceLimits(maxOutputBytesPerStream: 64 << 10))
        let large = AgentConnection.maximumResultFrameBytes(for: ResourceLimits(maxOutputBytesPerStream: 8 << 20))
        // Three base64-encoded streams must fit; much more must not.
        #expect(small >= 3 * (64 << 10) * 4 / 3)
        #expect(small < 1 << 20)
        #expect(large >= 3 * (8 << 20) * 4 / 3)
    }
}
