import Logging
import MicroVM
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(1)))
struct RuntimeDirectoryTests {
    let logger = Logger(label: "test.runtime-directory")

    func withTempRoot<T>(_ body: (String) async throws -> T) async throws -> T {
        var template = Array("/tmp/cbq-rt-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer {
            RuntimeDirectory.cleanLeftovers(under: root, logger: logger)
            _ = root.withCString { path in
                // The test's own directories are removed by the test; anything else is a failure already reported.
                rmdir(path)
            }
        }
        return try await body(root)
    }

    @Test func createsShortPrivateDirectoriesAndRemovesThem() async throws {
        try await withTempRoot { root in
            let directory = try RuntimeDirectory.create(under: root + "/nested/deeper", prefix: "q")
            var info = stat()
            #expect(stat(directory.path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700)
            #expect(try directory.socketPath("agent.sock").hasPrefix(root + "/nested/deeper/q"))
            #expect(access(directory.file("owner"), R_OK) == 0)
            directory.remove()
            #expect(access(directory.path, F_OK) != 0)
            rmdir(root + "/nested/deeper")
            rmdir(root + "/nested")
        }
    }

    @Test func refusesSocketPathsThatDoNotFitSunPath() async throws {
        try await withTempRoot { root in
            let long = root + "/" + String(repeating: "d", count: 90)
            let directory = try RuntimeDirectory.create(under: long)
            defer {
                directory.remove()
                rmdir(long)
            }
            let error = #expect(throws: VMError.self) { try directory.socketPath("agent.sock") }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func cleansDirectoriesOfDeadOwnersAndKillsTheirVMM() async throws {
        try await withTempRoot { root in
            // A VMM stand-in left running by a "dead" owner, in its own process group like a real one.
            let vmm = try await VMMProcess.spawn(
                executable: "/bin/sleep", arguments: ["100"], stdout: ConsoleRing(capacity: 64), stderr: ConsoleRing(capacity: 64))
            let stale = root + "/qstale1"
            #expect(mkdir(stale, 0o700) == 0)
            // Our own pid with another start time: a pid the kernel has recycled, so the owner is dead.
            let me = ProcessIdentity.current
            try writeText(stale + "/owner", "\(me.pid) \(me.startTime + 1)\n")
            try writeText(stale + "/vmm", "\(ProcessIdentity.of(pid: vmm.pid)!)\n")
            let live = try RuntimeDirectory.create(under: root, prefix: "q")

            let removed = RuntimeDirectory.cleanLeftovers(under: root, logger: logger)

            #expect(removed == 1)
            #expect(access(stale, F_OK) != 0)
            #expect(access(live.path, F_OK) == 0)
            let status = await vmm.waitForExitIgnoringCancellation()
            #expect(status == .signaled(SIGKILL))
            await vmm.closeOutputs()
            live.remove()
        }
    }

    func writeText(_ path: String, _ text: String) throws {
        guard let file = fopen(path, "w") else { throw VMError(.invalidConfiguration, "cannot write \(path)") }
        fputs(text, file)
        fclose(file)
    }
}
