import Testing

@testable import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// `/proc/<pid>/stat` read by the one parser the drivers, tests and benchmarks share.
@Suite struct ProcessStatTests {
    @Test func readsThisProcess() throws {
        let stat = try #require(ProcessStat.of(pid: getpid()))
        #expect(stat.parent == getppid())
        #expect(stat.state == "R" || stat.state == "S")
        #expect(stat.startTime > 0)
        #expect(ProcessStat.of(pid: 0) == nil && ProcessStat.of(pid: -1) == nil)
    }

    /// The name is parenthesised and may hold spaces and parentheses itself (it is the executable's
    /// file name, here a link's); the fields after it must still be found.
    @Test func aNameWithParenthesesAndSpaces() async throws {
        let directory = "/tmp/cb-stat-\(getpid())"
        let program = directory + "/x) (y z"
        _ = mkdir(directory, 0o700)
        defer {
            unlink(program)
            rmdir(directory)
        }
        #expect(symlink("/bin/sleep", program) == 0)
        let process = try await VMMProcess.spawn(
            executable: program, arguments: ["5"], stdout: ConsoleRing(capacity: 1024), stderr: ConsoleRing(capacity: 1024))
        defer { kill(process.pid, SIGKILL) }
        var read = ProcessStat.of(pid: process.pid)
        for _ in 0..<250 where read?.name != "x) (y z" {
            try await Task.sleep(for: .milliseconds(20))
            read = ProcessStat.of(pid: process.pid)
        }
        let stat = try #require(read)
        #expect(stat.name == "x) (y z")
        #expect(stat.parent == getpid())
        #expect(stat.state == "S" || stat.state == "R")
    }

    /// User and system time, kept across an exec: what the benchmarks charge to redis-server.
    @Test func countsCPUTime() async throws {
        let process = try await VMMProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 5"],
            stdout: ConsoleRing(capacity: 1024), stderr: ConsoleRing(capacity: 1024))
        defer { kill(process.pid, SIGKILL) }
        var stat = ProcessStat.of(pid: process.pid)
        for _ in 0..<500 where stat?.name != "sleep" {
            try await Task.sleep(for: .milliseconds(20))
            stat = ProcessStat.of(pid: process.pid)
        }
        #expect(stat?.name == "sleep")
        #expect((stat?.cpuTicks ?? 0) > 0, "the shell's loop counts")
    }
}
