import AgentProtocol
import FoundationEssentials
import Testing

/// Limits hold against programs that write as fast as they can (issue 11): the agent reads each output
/// pipe in bounded passes, so it gets back to its output-limit and deadline checks however fast data
/// keeps coming (issue 11 saw `yes` run 9 to 25 s past a 1 MiB limit while a drain read until the pipe
/// was empty). Every figure checked is the guest's own (`wallTimeMilliseconds`): the host may be loaded,
/// the guest's clock says when the agent acted.
/// One VM at a time, each test one cold TCG boot.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FastWriterTests {
    /// Writes one byte per write(2): each read of the pipe returns a few bytes, so a pass bounded only by
    /// bytes would take tens of thousands of reads.
    static let oneBytePerWrite = "python3 -c 'import os\nwhile True: os.write(1, b\"x\")'"

    @Test(arguments: ["yes", "cat /dev/zero"])
    func aFloodIsStoppedAtTheOutputLimitBeforeTheDeadline(_ command: String) async throws {
        let (wall, output) = (5000, 1 << 20)
        let result = try await VMTest.runOne(VMTest.request(command, wallMs: wall, output: output))
        #expect(result.verdict == .outputLimit, "\(result.summary)")
        #expect(result.stdout.count == output, "\(result.summary)")
        #expect(result.stdoutTruncated, "\(result.summary)")
        // Either floods 1 MiB in well under a second (guest wall ~0.4 s here); stopping it must not wait
        // for the deadline.
        #expect(result.wallTimeMilliseconds < wall, "guest wall \(result.wallTimeMilliseconds) ms: \(result.summary)")
    }

    @Test func aOneByteWriterIsStoppedAtTheOutputLimit() async throws {
        // python3 itself takes about a second to start under TCG: the wall limit leaves room for a loaded host.
        let (wall, output) = (10_000, 4096)
        let result = try await VMTest.runOne(VMTest.request(Self.oneBytePerWrite, wallMs: wall, output: output))
        #expect(result.verdict == .outputLimit, "\(result.summary)")
        #expect(result.stdout.count == output, "\(result.summary)")
        #expect(result.wallTimeMilliseconds < wall, "guest wall \(result.wallTimeMilliseconds) ms: \(result.summary)")
    }

    /// With an output limit it cannot reach in time, the writer meets the wall limit, within 1 s.
    @Test func aOneByteWriterWithRoomToWriteMeetsTheWallLimit() async throws {
        let wall = 3000
        let result = try await VMTest.runOne(
            VMTest.request(Self.oneBytePerWrite, wallMs: wall, output: RequestRules.maximumOutputBytes))
        #expect(result.verdict == .timeLimit, "\(result.summary)")
        #expect(!result.stdout.isEmpty, "\(result.summary)")
        #expect((wall..<(wall + 1000)).contains(result.wallTimeMilliseconds), "guest wall \(result.wallTimeMilliseconds) ms: \(result.summary)")
    }
}
