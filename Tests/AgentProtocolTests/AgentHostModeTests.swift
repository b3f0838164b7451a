import AgentProtocol
import Foundation
import Glibc
import Testing

/// The real `codebench-agent` binary in its host test mode (`--listen-unix`): jobs run unconfined, but
/// framing, hello, verdicts, limits on time and output, stdin delivery and error replies are the guest's.
// Serialized: each test owns an agent process, and a few at a time is plenty on two cores.
@Suite(.serialized, .enabled(if: HostAgent.binaryPath != nil, "codebench-agent is not built next to the test bundle"))
struct AgentHostModeTests {
    @Test func saysHelloThenRunsAShellCommand() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        guard case .hello(let hello) = try agent.receive() else { Issue.record("first frame is not hello"); return }
        #expect(hello.protocolVersion == agentProtocolVersion)
        #expect(hello.kernel.hasPrefix("Linux "))

        let result = try agent.run(.shell(command: "echo out; echo err >&2; exit 3"))
        #expect(result.verdict == .runtimeError)
        #expect(result.exitCode == 3)
        #expect(result.signal == nil)
        #expect(String(decoding: result.stdout, as: UTF8.self) == "out\n")
        #expect(String(decoding: result.stderr, as: UTF8.self) == "err\n")
        #expect(result.message?.contains("exited with code 3") == true)
        #expect(result.message?.contains("unconfined") == true)
    }

    /// Revision 4: a request that asks gets the agent's phases, in order; one that does not gets none.
    /// The clean-up that follows a result (the work directory) is done before the next request runs.
    @Test func tracesPhasesWhenAskedAndCleansUpAfterTheResult() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        var traced = RunRequest(id: "traced", workload: .shell(command: "pwd"))
        traced.tracePhases = true
        let first = try agent.run(traced)
        #expect(first.verdict == .ok)
        // Host mode is unconfined: no cgroup phase.
        #expect(
            first.phases?.map(\.name) == ["decode", "validate", "work directory", "stdin", "spawn", "run until exit", "drain output", "outcome", "result"])
        #expect(first.phases?.allSatisfy { $0.microseconds >= 0 } == true)
        let directory = String(decoding: first.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(directory.contains("-job-1"), "\(directory)")

        let second = try agent.run(RunRequest(id: "plain", workload: .shell(command: "test -e \"$1\" && echo left || echo gone"), arguments: [directory]))
        #expect(second.phases == nil)
        #expect(String(decoding: second.stdout, as: UTF8.self) == "gone\n")
    }

    /// A VM the host does not end right after a result still gets its clean-up: once the agent has
    /// been idle a moment (FrameServer.afterReplyIdleMilliseconds), not only when the next message comes.
    @Test func cleansUpAfterTheResultOnceIdle() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let result = try agent.run(.shell(command: "pwd; touch left-behind"))
        #expect(result.verdict == .ok)
        let directory = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(directory.contains("-job-1"), "\(directory)")
        let deadline = Date().addingTimeInterval(10)
        while FileManager.default.fileExists(atPath: directory), Date() < deadline { usleep(20_000) }
        #expect(!FileManager.default.fileExists(atPath: directory), "the work directory is still there 10 s after the result")
    }

    /// Revision 4: a request that asks has the agent make the next request's directory before it
    /// answers; the next request runs in it, and the one after makes its own again.
    @Test func preparesTheNextRequestsDirectoryWhenAsked() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        var warmUp = RunRequest(id: "warm-up", workload: .shell(command: "true"))
        warmUp.prepareNextRequest = true
        #expect(try agent.run(warmUp).verdict == .ok)

        var traced = RunRequest(id: "job", workload: .shell(command: "pwd; ls -A"))
        traced.tracePhases = true
        let second = try agent.run(traced)
        #expect(second.phases?.map(\.name).contains("prepared work directory") == true, "\(second.phases ?? [])")
        #expect(second.phases?.map(\.name).contains("work directory") == false)
        let lines = String(decoding: second.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.first?.hasSuffix("-job-2") == true, "\(lines)")
        #expect(lines.count == 1, "the prepared directory is empty: \(lines)")

        let third = try agent.run(traced)
        #expect(third.phases?.map(\.name).contains("work directory") == true, "\(third.phases ?? [])")
        #expect(String(decoding: third.stdout, as: UTF8.self).hasSuffix("-job-3\n"))
    }

    /// Revision 7: a request may have the next two requests prepared (a snapshot's template does, for
    /// a warm VM's priming and its job). Each runs in its own prepared directory; a priming that asks
    /// for the next one again finds it made and makes no other; the request after makes its own.
    @Test func preparesTheNextTwoRequestsWhenAskedAndRefusesMore() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        var template = RunRequest(id: "template", workload: .shell(command: "true"))
        template.prepareNextRequest = true
        template.preparedRequests = 2
        #expect(try agent.run(template).verdict == .ok)

        var priming = RunRequest(id: "priming", workload: .shell(command: "pwd"))
        priming.prepareNextRequest = true
        priming.tracePhases = true
        let primed = try agent.run(priming)
        #expect(primed.phases?.map(\.name).contains("prepared work directory") == true, "\(primed.phases ?? [])")
        let primingLines = String(decoding: primed.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(primingLines.first?.hasSuffix("-job-2") == true, "\(primingLines)")

        var job = RunRequest(id: "job", workload: .shell(command: "pwd; ls -A"))
        job.tracePhases = true
        let second = try agent.run(job)
        #expect(second.phases?.map(\.name).contains("prepared work directory") == true, "\(second.phases ?? [])")
        let lines = String(decoding: second.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.first?.hasSuffix("-job-3") == true, "\(lines)")
        #expect(lines.count == 1, "the prepared directory is empty: \(lines)")
        let primingDirectory = primingLines.first ?? ""
        #expect(!primingDirectory.isEmpty && !FileManager.default.fileExists(atPath: primingDirectory), "the priming's directory went before the job ran")

        let third = try agent.run(job)
        #expect(third.phases?.map(\.name).contains("work directory") == true, "only two were prepared: \(third.phases ?? [])")
        #expect(String(decoding: third.stdout, as: UTF8.self).hasPrefix(primingDirectory.replacingOccurrences(of: "-job-2", with: "-job-4")))

        var greedy = RunRequest(id: "greedy", workload: .shell(command: "true"))
        greedy.prepareNextRequest = true
        greedy.preparedRequests = RunRequest.maximumPreparedRequests + 1
        try agent.send(try AgentFrame.encode(.run(greedy)))
        guard case .error(let refused) = try agent.receive() else {
            Issue.record("a request preparing \(RunRequest.maximumPreparedRequests + 1) requests was not refused")
            return
        }
        #expect(refused.code == .invalidRequest)
        #expect(refused.message.contains("'preparedRequests' must be at most \(RunRequest.maximumPreparedRequests)"), "\(refused.message)")
    }

    @Test func deliversBinaryStdinAndReportsSignals() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let input = Data([0, 1, 2, 255, 10, 0x41])
        let echoed = try agent.run(.shell(command: "cat"), stdin: input)
        #expect(echoed.verdict == .ok)
        #expect(echoed.stdout == input)

        let crashed = try agent.run(.shell(command: "kill -SEGV $$"))
        #expect(crashed.verdict == .runtimeError)
        #expect(crashed.signal == SIGSEGV)
        #expect(crashed.message?.contains("SIGSEGV") == true)
    }

    @Test func enforcesTheWallTimeAndOutputLimits() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let slow = try agent.run(.shell(command: "sleep 20 & sleep 20"), limits: ResourceLimits(wallTimeMilliseconds: 300))
        #expect(slow.verdict == .timeLimit)
        #expect(slow.message?.hasPrefix("time limit of 300 ms exceeded") == true)
        #expect(slow.wallTimeMilliseconds >= 300 && slow.wallTimeMilliseconds < 10_000)

        let chatty = try agent.run(.shell(command: "yes"), limits: ResourceLimits(maxOutputBytesPerStream: 1000))
        #expect(chatty.verdict == .outputLimit)
        #expect(chatty.stdout.count == 1000)
        #expect(chatty.stdoutTruncated)
        #expect(!chatty.stderrTruncated)
    }

    /// A writer faster than the agent's reads must not keep it from its checks: each stream is read in
    /// bounded passes (issue 11). Figures are the agent's own wall times, not the host's.
    @Test func stopsFastWritersAtTheOutputLimitAndTheDeadline() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let oneBytePerWrite = "python3 -c 'import os\nwhile True: os.write(1, b\"x\")'"
        for (command, output) in [("yes", 1 << 20), ("cat /dev/zero", 1 << 20), ("yes >&2", 1 << 20), (oneBytePerWrite, 4096)] {
            let flood = try agent.run(.shell(command: command), limits: ResourceLimits(wallTimeMilliseconds: 5000, maxOutputBytesPerStream: output))
            #expect(flood.verdict == .outputLimit, "\(command): \(flood.verdict) \(flood.message ?? "")")
            #expect(flood.stdout.count + flood.stderr.count == output, "\(command)")
            #expect(flood.wallTimeMilliseconds < 5000, "\(command): \(flood.wallTimeMilliseconds) ms")
        }
        // With room for all it can write, the one-byte writer meets the deadline instead.
        let steady = try agent.run(
            .shell(command: oneBytePerWrite), limits: ResourceLimits(wallTimeMilliseconds: 1000, maxOutputBytesPerStream: RequestRules.maximumOutputBytes))
        #expect(steady.verdict == .timeLimit, "\(steady.verdict) \(steady.message ?? "")")
        #expect(steady.stdout.count > 0)
        #expect((1000..<2000).contains(steady.wallTimeMilliseconds), "\(steady.wallTimeMilliseconds) ms")
    }

    @Test func answersBadFramesAndRequestsWithErrorsAndKeepsServing() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()

        try agent.send(Array("this is not a frame".utf8))
        #expect(try agent.receiveError().code == .malformedFrame)

        var otherVersion = try AgentFrame.encode(.shutdown)
        otherVersion[3] = 9
        try agent.send(otherVersion)
        #expect(try agent.receiveError().code == .unsupportedVersion)

        try agent.send(AgentFrame.magic + [agentProtocolVersion, 0x7f, 0xff, 0xff, 0xff] + Array(repeating: 0x41, count: 1000))
        #expect(try agent.receiveError().code == .tooLarge)

        let json = Array(#"{"run":{"_0":{"id":"x"}}}"#.utf8)
        try agent.send(AgentFrame.magic + [agentProtocolVersion, 0, 0, 0, UInt8(json.count)] + json)
        #expect(try agent.receiveError().code == .malformedFrame)

        try agent.send(try AgentFrame.encode(.run(RunRequest(id: "big", workload: .shell(command: "true"), limits: ResourceLimits(maxProcesses: 0)))))
        let invalid = try agent.receiveError()
        #expect(invalid.code == .invalidRequest)
        #expect(invalid.message == "request big: field 'limits.processes' must be at least 1")

        let after = try agent.run(.shell(command: "echo still here"))
        #expect(String(decoding: after.stdout, as: UTF8.self) == "still here\n")
    }

    @Test func reportsCompileErrorsWithoutRunning() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let result = try agent.run(.program(language: .c, source: "int main(void) { return undefined_name; }"))
        #expect(result.verdict == .compileError)
        #expect(String(decoding: result.compileOutput ?? Data(), as: UTF8.self).contains("undefined_name"))
        #expect(result.stdout.isEmpty)
    }

    @Test func answersResumeWithItsNonceAndRefusesTooLittleEntropy() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let short = AgentResume(nonce: "n1", unixTimeNanoseconds: now, entropy: Data(repeating: 7, count: AgentResume.minimumEntropyBytes - 1))
        try agent.send(try AgentFrame.encode(.resume(short)))
        let refused = try agent.receiveError()
        #expect(refused.code == .invalidRequest)
        #expect(refused.message.contains("entropy"))

        // In host mode the agent checks the resume but leaves the host's clock and entropy pool alone.
        let resume = AgentResume(nonce: "n2", unixTimeNanoseconds: now, entropy: Data(repeating: 7, count: 64))
        try agent.send(try AgentFrame.encode(.resume(resume)))
        guard case .hello(let hello) = try agent.receive() else { Issue.record("resume was not answered by a hello"); return }
        #expect(hello.resumeNonce == "n2")
        #expect(hello.phases == nil, "a resume that did not ask gets no phases")
        #expect(try agent.run(.shell(command: "echo still serving")).verdict == .ok)
    }

    /// Revision 5: a resume that asks gets the agent's phases in its hello. In host mode the agent
    /// only checks the resume (no clock, no entropy), so the phases stop there.
    @Test func tracesAResumeWhenAsked() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        guard case .hello(let first) = try agent.receive() else { Issue.record("first frame is not hello"); return }
        #expect(first.revision == agentProtocolRevision, "the agent binary speaks this build's revision")
        var resume = AgentResume(nonce: "n3", unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9), entropy: Data(repeating: 1, count: 32))
        resume.tracePhases = true
        try agent.send(try AgentFrame.encode(.resume(resume)))
        guard case .hello(let hello) = try agent.receive() else { Issue.record("resume was not answered by a hello"); return }
        #expect(hello.resumeNonce == "n3")
        #expect(hello.phases?.map(\.name) == ["decode", "checked", "hello"])
        #expect(hello.phases?.allSatisfy { $0.microseconds >= 0 } == true)
        // The trace ended with the resume: the next request, untraced, gets none.
        #expect(try agent.run(.shell(command: "true")).phases == nil)
    }

    @Test func exitsOnShutdownInHostMode() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        try agent.send(try AgentFrame.encode(.shutdown))
        #expect(agent.waitForExit() == 0)
    }
}

/// A `codebench-agent --listen-unix` child and a blocking client connection to it (5 s read timeout).
/// Spawned with posix_spawn rather than Foundation's Process: Process leaks a descriptor into children
/// spawned concurrently by other tests, and its children inherit the test thread's blocked signals.
final class HostAgent {
    /// The agent built by the same `swift build` as this test bundle, if it exists.
    static let binaryPath: String? = {
        let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let candidate = bundle.appendingPathComponent("codebench-agent").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    private let socketPath: String
    private var pid: pid_t = 0
    private var fd: Int32 = -1
    private var decoder = AgentFrameDecoder()

    init() throws {
        socketPath = "/tmp/codebench-agent-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        pid = try HostAgent.spawn([HostAgent.binaryPath!, "--listen-unix", socketPath])
        var attempts = 0
        while fd < 0, attempts < 500 {
            fd = HostAgent.connect(socketPath)
            if fd < 0 { usleep(10_000) }
            attempts += 1
        }
        guard fd >= 0 else {
            stop()
            throw HostAgentError(message: "the agent did not listen on \(socketPath) within 5 s")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Kills the agent (if still running), reaps it and removes its socket, and the work directories a
    /// killed agent had not removed yet (it answers a request before it cleans up after it).
    func stop() {
        if fd >= 0 { close(fd) }
        fd = -1
        if pid > 0 {
            let killed = pid
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
            let prefix = "codebench-agent-\(killed)-"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix(prefix) {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        unlink(socketPath)
    }

    /// The agent's exit status once it exits on its own (nil if killed by a signal or not within 10 s).
    func waitForExit() -> Int32? {
        for _ in 0..<1000 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
            }
            usleep(10_000)
        }
        return nil
    }

    private static func spawn(_ argv: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        // On the host there is no image: the agent reads the repository's registry.
        let registry = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("guest/languages.json").path
        let environment = ProcessInfo.processInfo.environment.filter { $0.key != "CODEBENCH_LANGUAGES" }
            .map { "\($0.key)=\($0.value)" } + ["CODEBENCH_LANGUAGES=\(registry)"]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard rc == 0 else { throw HostAgentError(message: "posix_spawn \(argv[0]) failed: errno \(rc)") }
        return pid
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            guard written > 0 else { throw HostAgentError(message: "write failed: errno \(errno)") }
            offset += written
        }
    }

    func receive() throws -> AgentMessage {
        while true {
            if let message = try decoder.next() { return message }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard count > 0 else { throw HostAgentError(message: "no frame from the agent (read returned \(count), errno \(errno))") }
            decoder.append(chunk[0..<count])
        }
    }

    func receiveError() throws -> AgentErrorReply {
        let message = try receive()
        guard case .error(let reply) = message else { throw HostAgentError(message: "expected an error reply, got \(message)") }
        return reply
    }

    func run(_ workload: Workload, stdin: Data = Data(), limits: ResourceLimits = ResourceLimits()) throws -> RunResult {
        try send(try AgentFrame.encode(.run(RunRequest(id: "t", workload: workload, stdin: stdin, limits: limits))))
        let message = try receive()
        guard case .result(let result) = message else { throw HostAgentError(message: "expected a result, got \(message)") }
        return result
    }

    private static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 {
            close(fd)
            return -1
        }
        return fd
    }
}

struct HostAgentError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
