import Foundation
import Testing

@testable import Worker

/// Python judge cases are forked from a warm interpreter in the guest (guest/fork-servers/python.py):
/// each case must still get exactly what a fresh `python3 -I -B main.py` gets, and nothing else.
@Suite("Fork server for Python judge cases", .serialized)
struct ForkServerTests {
    /// One program, a mode per case (its first argument).
    static let program = #"""
        import atexit, os, sys, threading, time
        mode = sys.argv[1]
        if mode == "identity":
            # 'socket' is loaded only in a case forked from the server: proof the fork path ran.
            print("forked" if "socket" in sys.modules else "spawned")
            print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), os.getppid())
            print(sys.argv, os.getcwd() == os.environ["HOME"], sys.flags.dont_write_bytecode)
            def is_open(fd):
                try:
                    os.fstat(fd)
                    return True
                except OSError:
                    return False
            print("descriptors", [fd for fd in range(1024) if is_open(fd)])
            with open("/proc/self/status") as status:
                print([line.split()[1] for line in status if line.startswith(("CapEff", "NoNewPrivs"))])
            with open("/proc/self/cgroup") as group:
                print(group.read().strip().endswith("-case-1"))
            open("mine", "w").write("x")
            open("/tmp/mine-py", "w").write("x")
        elif mode == "fresh":
            print(os.path.exists("mine"), os.path.exists("/tmp/mine-py"), sys.argv)
        elif mode == "server":
            # The server is root: a case can neither signal it nor read its memory.
            import signal
            # Cases share the server's command line; the server is the one running as root.
            def root(pid):
                with open(f"/proc/{pid}/status") as status:
                    return any(line.split()[1] == "0" for line in status if line.startswith("Uid:"))
            servers = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and
                       b"fork-servers" in open(f"/proc/{pid}/cmdline", "rb").read() and root(pid)]
            for pid in servers:
                try:
                    os.kill(pid, signal.SIGKILL)
                    print("killed", pid)
                except PermissionError:
                    print("refused")
                try:
                    open(f"/proc/{pid}/mem", "rb").read(1)
                    print("read its memory")
                except OSError:
                    print("no memory")
        elif mode == "raise":
            def inner():
                raise ValueError("boom")
            inner()
        elif mode == "message":
            sys.exit("goodbye")
        elif mode == "finish":
            atexit.register(lambda: print("atexit ran"))
            threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined", flush=True))).start()
            writer = open(1, "w", closefd=False)
            writer.write("unflushed writer\n")
        elif mode == "memory":
            hog = bytearray(200 << 20)
            print(len(hog))
        elif mode == "spin":
            while True:
                pass
        """#

    @Test("cases forked from the warm interpreter: runner user, own cgroup, fresh directory, exit semantics, limits")
    func forkedCasesBehaveLikeFreshInterpreters() async throws {
        try await WorkerHarness.with { harness in
            let tests: [[String: Any]] = [
                ["name": "identity", "args": ["identity"]],
                ["name": "fresh", "args": ["fresh", "ä b"], "expected_output": "False False ['main.py', 'fresh', 'ä b']\n"],
                ["name": "server", "args": ["server"], "expected_output": "refused\nno memory\n"],
                ["name": "raise", "args": ["raise"]],
                ["name": "message", "args": ["message"]],
                ["name": "finish", "args": ["finish"]],
                ["name": "memory", "args": ["memory"], "limits": ["memory_mb": 64]],
                ["name": "spin", "args": ["spin"], "limits": ["cpu_time_ms": 500, "wall_time_ms": 20000]],
            ]
            try harness.push(try JudgeJobTests.payload(["id": "fork", "language": "python", "code": Self.program, "tests": tests]))
            let result = WorkerHarness.result(try await harness.readStatuses("fork"))
            let cases = JudgeJobTests.cases(result)
            #expect(
                JudgeJobTests.verdicts(result)
                    == ["accepted", "accepted", "accepted", "runtime_error", "runtime_error", "accepted", "memory_limit", "cpu_time_limit"],
                "\(result)")
            func stdout(_ index: Int) -> String { cases.count > index ? cases[index]["stdout"] as? String ?? "" : "" }
            func stderr(_ index: Int) -> String { cases.count > index ? cases[index]["stderr"] as? String ?? "" : "" }

            let identity = stdout(0).split(separator: "\n").map(String.init)
            #expect(identity.count == 6, "\(identity)")
            #expect(identity.first == "forked", "the case did not come from the fork server: \(identity)")
            #expect(identity.dropFirst().first == "1000 1000 1000 [] 1", "runner user, no groups, the agent as parent: \(identity)")
            #expect(identity.dropFirst(2).first == "['main.py', 'identity'] True 1", "\(identity)")
            #expect(identity.dropFirst(3).first == "descriptors [0, 1, 2]", "only stdio is open: \(identity)")
            #expect(identity.dropFirst(4).first == "['0000000000000000', '1']", "no capabilities, no_new_privs: \(identity)")
            #expect(identity.dropFirst(5).first == "True", "the case's own cgroup: \(identity)")

            #expect(cases.count > 3 && cases[3]["exit_code"] as? Int == 1)
            #expect(stderr(3).hasPrefix("Traceback (most recent call last):\n  File \"/tmp/"), "\(stderr(3))")
            #expect(stderr(3).hasSuffix("ValueError: boom\n") && !stderr(3).contains("fork-servers"), "\(stderr(3))")
            #expect(cases.count > 4 && cases[4]["exit_code"] as? Int == 1 && stderr(4) == "goodbye\n", "\(cases.dropFirst(4).first ?? [:])")
            // The interpreter's order: threads joined, atexit handlers, the standard streams, then other files.
            #expect(stdout(5) == "thread joined\natexit ran\nunflushed writer\n", "\(stdout(5))")
            #expect(cases.count > 7 && (cases[7]["wall_ms"] as? Int ?? .max) < 10_000, "stopped by its CPU limit")
        }
    }
}
