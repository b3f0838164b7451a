import AgentProtocol
import FoundationEssentials
import MicroVM
@testable import QEMUDriver
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// VMs restored from a snapshot: made once on first use, each restored VM resumed with fresh
    /// entropy and the host's clock, a snapshot QEMU refuses replaced, and nothing left behind.
    @Suite struct Snapshots {
        /// A snapshot directory of its own, so the test sees its snapshot being made.
        final class Store: Sendable {
            let root = "/tmp/cbq-snap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            var driver: QEMUDriver { QEMUDriver(configuration: .init(accelerator: .tcg, snapshotDirectory: root)) }
            deinit { _ = try? runShell("rm -rf \(root)") }

            /// The state files, one per snapshot made.
            var states: [String] {
                (try? runShell("ls \(root)/*/state 2>/dev/null"))?.split(separator: "\n").map(String.init) ?? []
            }

            func run(_ command: String, memoryMiB: Int = 256) async throws -> (hello: AgentHello, result: RunResult) {
                try await driver.withVM(try VMTest.configuration(memoryMiB: memoryMiB), logger: VMTest.logger) { session in
                    (session.hello, try await session.run(VMTest.request(command), timeout: .seconds(20)))
                }
            }
        }

        @Test func restoredVMsGetFreshEntropyAndTheHostClock() async throws {
            let store = Store()
            let command = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s"
            // The host's clock around each run: the guest's `date` must fall inside, give or take the
            // second truncation, however long the runs take on a loaded host.
            func timed(_ run: () async throws -> (hello: AgentHello, result: RunResult)) async throws
                -> (run: (hello: AgentHello, result: RunResult), window: ClosedRange<Int>) {
                let before = Int(Date().timeIntervalSince1970)
                let result = try await run()
                return (result, before - 1...Int(Date().timeIntervalSince1970) + 1)
            }
            let (first, firstWindow) = try await timed { try await store.run(command) }
            let states = store.states
            #expect(states.count == 1, "one snapshot made on first use: \(states)")
            let inode = try runShell("stat -c %i \(states.first ?? "/nonexistent")")
            let (second, secondWindow) = try await timed { try await store.run(command) }
            #expect(store.states == states)
            #expect(try runShell("stat -c %i \(states.first ?? "/nonexistent")") == inode, "the snapshot was reused, not made again")

            for run in [first, second] {
                #expect(run.hello.resumeNonce != nil, "the VM was restored and resumed, not cold-booted")
                #expect(run.result.verdict == .ok, "\(run.result.summary)")
            }
            let lines = [first, second].map { $0.result.stdoutText.split(separator: "\n").map(String.init) }
            #expect(lines.allSatisfy { $0.count == 2 }, "\(lines)")
            guard lines.allSatisfy({ $0.count == 2 }) else { return }
            #expect(lines[0][0].count == 32 && lines[0][0] != lines[1][0], "two VMs from one snapshot read different random bytes: \(lines)")
            for (line, window) in zip(lines, [firstWindow, secondWindow]) {
                let guestNow = Int(line[1]) ?? 0
                #expect(window.contains(guestNow), "guest clock \(guestNow), host \(window) around the run: the snapshot's clock was not reset")
            }
        }

        /// The template made the next request's work directory and cgroup before it was saved: a
        /// restored VM's job runs in them (the agent's phases say so), with its own limits, and each
        /// of two VMs from the snapshot has its own copy (a file one job leaves there the other never sees).
        @Test func restoredVMsRunTheirJobInTheDirectoryAndCgroupTheTemplateMade() async throws {
            let store = Store()
            let command = "cat mark 2>&1; echo $$ > mark; cat /sys/fs/cgroup/$(basename \"$PWD\")/memory.max; df -k . | tail -1"
            var results: [RunResult] = []
            for _ in 0..<2 {
                results.append(try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    var request = VMTest.request(command, memory: 96 << 20)
                    request.tracePhases = true
                    return try await session.run(request, timeout: .seconds(20))
                })
            }
            for result in results {
                #expect(result.verdict == .ok, "\(result.summary)")
                let names = result.phases?.map(\.name) ?? []
                #expect(names.contains("prepared work directory") && names.contains("prepared cgroup"), "\(names)")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines.count == 3, "\(lines)")
                guard lines.count == 3 else { continue }
                #expect(lines[0].contains("No such file"), "a clone's directory is its own: \(lines[0])")
                #expect(lines[1] == "\(96 << 20)", "the request's memory limit, not the template's")
                // The tmpfs resized to the request's limit (df: 1K blocks in column 2).
                #expect(lines[2].split(separator: " ").dropFirst().first == "\(96 << 10)", "\(lines[2])")
            }
        }

        /// The template's cgroup holds the protocol's default limits, and a restored VM's prepared shell
        /// job writes only the limits that differ (CGroup.adopting): a job with other limits still gets
        /// them, both of them, and one with the defaults gets the defaults. Its empty stdin, never
        /// written, is still an empty regular file. And the template ran its warm-up and then a shell
        /// job through its prepared shell (TemplateWarmup): a restored VM's job is the agent's third.
        @Test func aRestoredShellJobGetsItsOwnLimitsWhateverTheTemplateWrote() async throws {
            let store = Store()
            let command = #"cg=/sys/fs/cgroup/$(basename "$PWD"); basename "$PWD"; cat $cg/memory.max $cg/pids.max; wc -c < /dev/stdin; stat -L -c %F /dev/stdin"#
            let defaults = ResourceLimits()
            let cases: [(memory: Int, processes: Int)] = [(96 << 20, 7), (defaults.memoryBytes, defaults.maxProcesses), (defaults.memoryBytes, 9)]
            for limits in cases {
                let result = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    var request = VMTest.request(command, memory: limits.memory, processes: limits.processes)
                    request.tracePhases = true
                    return try await session.run(request, timeout: .seconds(20))
                }
                #expect(result.verdict == .ok, "\(result.summary)")
                #expect(result.phases?.map(\.name).contains("prepared shell") == true, "\(result.phases ?? [])")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines == ["job-3", "\(limits.memory)", "\(limits.processes)", "0", "regular empty file"], "\(limits): \(lines)")
            }
        }

        /// A worker with warm VMs has its template prepare two requests (the second for a primed VM's
        /// job, VMConfiguration.snapshotPreparedJobs), so a VM restored for one job holds a second idle
        /// runner shell. The job must not be able to use it
        /// (ptrace it, and run code outside its own cgroup, uncounted): the agent kills it before the
        /// job runs. Without that it sleeps in its `read` for good, and this listing names it.
        @Test func aRestoredVMsJobFindsNoOtherLiveRunnerProcess() async throws {
            let store = Store()
            // Shell builtins only (one fork per attempt): under TCG a fork per process listed would
            // take the job past its time limit.
            let command = #"""
                own="0::/${PWD##*/}"
                for attempt in 1 2 3 4 5 6 7 8 9 10; do
                  foreign=""
                  for p in /proc/[0-9]*; do
                    uid=""; state=""; cgroup=""
                    while read -r key first rest; do
                      case $key in State:) state=$first ;; Uid:) uid=$first ;; esac
                    done < "$p/status" 2>/dev/null
                    [ "$uid" = "$UID" ] || continue
                    case $state in Z|X|"") continue ;; esac
                    read -r cgroup < "$p/cgroup" 2>/dev/null
                    [ "$cgroup" = "$own" ] || foreign="$foreign ${p#/proc/}:$state:$cgroup"
                  done
                  [ -z "$foreign" ] && break
                  sleep 0.1
                done
                echo "own $own"
                echo "foreign${foreign:- none}"
                """#
            var vm = try VMTest.configuration()
            vm.snapshotPreparedJobs = 2
            let result = try await store.driver.withVM(vm, logger: VMTest.logger) { session in
                try await session.run(VMTest.request(command), timeout: .seconds(30))
            }
            #expect(result.verdict == .ok, "\(result.summary)")
            let lines = result.stdoutText.split(separator: "\n").map(String.init)
            #expect(lines == ["own 0::/job-3", "foreign none"], "\(lines)")
        }

        /// The template started the image's Python fork server and ran a program through it
        /// (``RunRequest/prepareForkServers``): a restored VM's Python program, a single run, is forked
        /// from it, in the job's own directory and cgroup, as the runner, with the job's stdin,
        /// arguments and exit status; a cold VM's is spawned, and sees the same but the fork, and so
        /// is one restored from a template told to start none. Two restored VMs' programs draw
        /// different random numbers; they share the server's hash seed (an accepted difference,
        /// docs/languages.md).
        @Test func aRestoredVMsPythonProgramIsForkedFromTheTemplatesServer() async throws {
            let store = Store()
            let program = #"""
                import os, random, sys
                print("forked" if "socket" in sys.modules else "spawned")
                print(os.getuid(), os.getppid(), sys.argv, os.getcwd() == os.environ["HOME"], os.path.basename(os.getcwd()))
                with open("/proc/self/cgroup") as group:
                    print(group.read().strip())
                print(sys.stdin.read().upper())
                print(random.getrandbits(64), hash("codebench"), file=sys.stderr)
                sys.exit(3)
                """#
            let request = RunRequest(
                id: "py", workload: .program(language: .python, source: program), stdin: Data("hi".utf8),
                limits: ResourceLimits(wallTimeMilliseconds: 20_000), arguments: ["a b"])
            func restore(forkServers: Bool = true) async throws -> (resumed: Bool, result: RunResult) {
                var vm = try VMTest.configuration()
                vm.snapshotForkServers = forkServers
                return try await store.driver.withVM(vm, logger: VMTest.logger) { session in
                    (session.hello.resumeNonce != nil, try await session.run(request, timeout: .seconds(40)))
                }
            }
            let restored = [try await restore(), try await restore()]
            // A template told not to start them (the worker's warm-interpreters=false) leaves none.
            let withoutServers = try await restore(forkServers: false)
            let cold = try await QEMUDriver(configuration: .init(accelerator: .tcg, snapshotDirectory: nil)).withVM(
                try VMTest.configuration(), logger: VMTest.logger
            ) { session in
                try await session.run(request, timeout: .seconds(40))
            }
            #expect((restored + [withoutServers]).allSatisfy { $0.resumed }, "the VMs were restored from the snapshot")
            let runs = [
                ("restored", restored[0].result, 3), ("restored", restored[1].result, 3), ("without servers", withoutServers.result, 3),
                ("cold", cold, 1),
            ]
            for (name, result, number) in runs {
                #expect(result.exitCode == 3, "\(name): \(result.summary)")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                #expect(
                    lines.dropFirst() == ["1000 1 ['main.py', 'a b'] True job-\(number)", "0::/job-\(number)", "HI"],
                    "\(name): \(lines)")
                #expect(lines.first == (name == "restored" ? "forked" : "spawned"), "\(name): \(lines)")
            }
            let drawn = restored.map { $0.result.stderrText.split(separator: " ").map(String.init) }
            #expect(drawn.allSatisfy { $0.count == 2 }, "\(drawn)")
            guard drawn.allSatisfy({ $0.count == 2 }) else { return }
            #expect(drawn[0][0] != drawn[1][0], "random numbers drawn afresh in each restored VM: \(drawn)")
            #expect(drawn[0][1] == drawn[1][1], "the server's hash seed, shared: \(drawn)")
        }

        /// A restored VM's program runs in the cgroup the template made for the next request, where
        /// the template's prepared shell started (and which the job's discard of it ended): that CPU
        /// time is not the program's. Its reported CPU time counts its own busy loop and is below the
        /// cgroup's raw figure, which still holds the shell's.
        @Test func aRestoredVMsProgramIsNotChargedThePreparedShellsCPUTime() async throws {
            let store = Store()
            let program = #"""
                import time
                start = time.process_time()
                while time.process_time() - start < 0.2:
                    pass
                group = open("/proc/self/cgroup").read().strip().split("::")[1]
                print(int(open(f"/sys/fs/cgroup{group}/cpu.stat").read().split()[1]) // 1000)
                """#
            let request = RunRequest(
                id: "cpu", workload: .program(language: .python, source: program), limits: ResourceLimits(wallTimeMilliseconds: 20_000))
            let (resumed, result) = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                (session.hello.resumeNonce != nil, try await session.run(request, timeout: .seconds(40)))
            }
            #expect(resumed, "the VM was restored from the snapshot")
            #expect(result.verdict == .ok, "\(result.summary)")
            let cgroupTotal = Int(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(result.cpuTimeMilliseconds >= 195, "the program's own loop is counted: \(result.cpuTimeMilliseconds) ms")
            #expect(
                result.cpuTimeMilliseconds < cgroupTotal,
                "reported \(result.cpuTimeMilliseconds) ms, the cgroup's raw usage \(cgroupTotal) ms before the program ended")
        }

        /// A restored VM's judge job forks its cases and its Python checker from the one server the
        /// template started: the checker finds one root fork server in the VM (two when it started its
        /// own), and the server serves the next case after the checker.
        @Test func aRestoredVMsJudgeForksCasesAndCheckerFromTheTemplatesServer() async throws {
            let store = Store()
            let checker = #"""
                import os, sys
                def root(pid):
                    with open(f"/proc/{pid}/status") as status:
                        return any(line.split()[1] == "0" for line in status if line.startswith("Uid:"))
                servers = [pid for pid in os.listdir("/proc") if pid.isdigit()
                           and b"fork-servers" in open(f"/proc/{pid}/cmdline", "rb").read() and root(pid)]
                mode = "forked" if "socket" in sys.modules else "spawned"
                print(f"program {open(sys.argv[3]).read().strip()}, checker {mode}, {len(servers)} server(s)")
                sys.exit(1)
                """#
            let program = #"import sys; print("forked" if "socket" in sys.modules else "spawned")"#
            let request = RunRequest(
                id: "judge", workload: .program(language: .python, source: program),
                judge: JudgeSpec(
                    tests: [TestCase(name: "a", limits: ResourceLimits()), TestCase(name: "b", limits: ResourceLimits())],
                    checker: CheckerSpec(language: .python, source: checker)))
            let result = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                try await session.run(request, timeout: .seconds(60))
            }
            let messages = (result.tests ?? []).map { $0.message ?? "" }
            #expect(messages == Array(repeating: "checker: program forked, checker forked, 1 server(s)", count: 2), "\(result.summary) \(messages)")
        }

        /// A template prepared for the limits its VMs' jobs keep (a worker's defaults, ``VMConfiguration/expectedJobLimits``)
        /// leaves a restored VM's job with those limits nothing to remount; a job with others still gets its own.
        @Test func aTemplatePreparedForTheExpectedLimitsServesSuchAJobWithoutARemount() async throws {
            let store = Store()
            var vm = try VMTest.configuration()
            vm.expectedJobLimits = ResourceLimits(memoryBytes: 96 << 20, maxProcesses: 7)
            let command = #"cg=/sys/fs/cgroup/$(basename "$PWD"); cat $cg/memory.max $cg/pids.max; df -k . | awk 'NR == 2 { print $2 }'"#
            for (memory, processes) in [(96 << 20, 7), (ResourceLimits().memoryBytes, 7)] {
                let result = try await store.driver.withVM(vm, logger: VMTest.logger) { session in
                    var request = VMTest.request(command, memory: memory, processes: processes)
                    request.tracePhases = true
                    return try await session.run(request, timeout: .seconds(20))
                }
                #expect(result.verdict == .ok, "\(result.summary)")
                let phases = result.phases?.map(\.name) ?? []
                #expect(phases.contains("prepared shell"), "\(phases)")
                #expect(phases.contains("remount work directory") == (memory != 96 << 20), "\(memory): \(phases)")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                #expect(Array(lines.prefix(2)) == ["\(memory)", "\(processes)"], "\(lines)")
                #expect(lines.last == "\(memory >> 10)", "the work directory's tmpfs is the job's memory limit: \(lines)")
            }
            let key = try store.driver.snapshotKey(for: vm.resolvingSymlinks()).text
            #expect(key.contains("next job prepared for memory \(96 << 20) processes 7"), "\(key)")
            var warmWorkers = vm
            warmWorkers.snapshotPreparedJobs = 2
            let twoJobs = try store.driver.snapshotKey(for: warmWorkers.resolvingSymlinks())
            #expect(twoJobs.text.contains("next 2 jobs prepared for memory \(96 << 20) processes 7"), "\(twoJobs.text)")
            #expect(twoJobs.text != key, "a template preparing two jobs is another snapshot")
            var noServers = vm
            noServers.snapshotForkServers = false
            let plain = try store.driver.snapshotKey(for: noServers.resolvingSymlinks()).text
            #expect(key.contains("then a shell job: true, starting the image's fork servers\n"), "\(key)")
            #expect(plain.contains("then a shell job: true\n") && plain != key, "a template without fork servers is another snapshot: \(plain)")
        }

        /// A restored VM's shell job runs in the shell the template started (docs/snapshots.md): as
        /// the same command does under a spawned `bash -c` in a cold VM, line for line (job numbers
        /// aside), with the request's arguments, stdin, file-size limit and cgroup, and with none of
        /// the shell's start-up counted as the job's CPU time.
        @Test func aPreparedShellRunsTheCommandAsBashDashCDoes() async throws {
            let store = Store()
            let command = #"""
                echo "$0|$#|$@|$-|$LINENO"; echo "$BASH_EXECUTION_STRING" | head -c 20; echo
                compgen -v | grep -c '^__codebench'; ls /proc/self/fd | tr '\n' ' '; echo; cat; cat /dev/stdin; echo; ulimit -f
                id; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\t ' ' '; pwd; echo "$HOME $TMPDIR $PATH $LANG"
                cat /proc/self/cgroup; echo $$ $PPID | awk '{ print ($1 > 1), ($2 == 1) }'
                """#
            var request = VMTest.request(command, stdin: "from stdin\n")
            request.arguments = ["one", "two words"]
            request.limits.maxFileSizeBytes = 1 << 20
            request.tracePhases = true
            let restored = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                try await session.run(request, timeout: .seconds(20))
            }
            // The shell's start-up in the template (tens of ms of CPU under TCG) is not the job's: one
            // single-threaded process cannot use more CPU than the wall time from its release to its exit.
            var short = VMTest.request("true")
            short.limits.cpuTimeMilliseconds = 2000
            short.tracePhases = true
            let shortResult = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                try await session.run(short, timeout: .seconds(20))
            }
            #expect(shortResult.phases?.map(\.name).contains("prepared shell") == true)
            #expect(shortResult.verdict == .ok, "\(shortResult.summary)")
            #expect(shortResult.cpuTimeMilliseconds <= shortResult.wallTimeMilliseconds + 5, "\(shortResult.summary)")
            let cold = try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                try await session.run(request, timeout: .seconds(20))
            }
            #expect(restored.phases?.map(\.name).contains("prepared shell") == true, "\(restored.phases ?? [])")
            #expect(cold.phases?.map(\.name).contains("spawn") == true, "\(cold.phases ?? [])")
            #expect(restored.verdict == .ok, "\(restored.summary)")
            #expect(cold.verdict == .ok, "\(cold.summary)")
            func normalized(_ text: String) -> String {
                text.replacingOccurrences(of: #"job-[0-9]+"#, with: "job-N", options: .regularExpression)
            }
            #expect(normalized(restored.stdoutText) == normalized(cold.stdoutText))
            #expect(restored.stderrText == cold.stderrText)
            let lines = restored.stdoutText.split(separator: "\n").map(String.init)
            #expect(lines.first == "bash|2|one two words|hBc|1", "\(lines)")
            // Read from the descriptor, then again by name (a reopen of the unlinked file, as the runner).
            #expect(lines.filter { $0 == "from stdin" }.count == 2, "\(lines)")
            #expect(lines.contains("1024"), "ulimit -f in 1 KiB blocks: \(lines)")
            #expect(lines.contains("0 1 2 3 "), "only the standard descriptors (and ls's own): \(lines)")
            #expect(lines.contains("0"), "no variable of the prepared shell's script is left: \(lines)")
        }

        @Test func aSnapshotQEMURefusesIsReplacedAndTheJobStillRuns() async throws {
            let store = Store()
            _ = try await store.run("true")
            let state = try #require(store.states.first)
            // Garbage of the right name: QEMU fails to load it and exits.
            _ = try runShell("head -c 4096 /dev/zero > \(state)")

            let fallback = try await store.run("echo cold")
            #expect(fallback.result.stdoutText == "cold\n", "\(fallback.result.summary)")
            #expect(fallback.hello.resumeNonce == nil, "the job ran in a cold-booted VM")
            #expect(store.states.isEmpty, "the refused snapshot was removed")

            let next = try await store.run("echo warm")
            #expect(next.result.stdoutText == "warm\n", "\(next.result.summary)")
            #expect(next.hello.resumeNonce != nil, "a new snapshot was made and used")
            #expect(store.states.count == 1)
        }

        @Test func vmsStartingTogetherMakeOneSnapshotAndLeaveNothingBehind() async throws {
            let store = Store()
            let before = VMTest.census()
            let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
                for index in 0..<3 {
                    group.addTask { try await store.run("echo \(index)").result }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.map(\.stdoutText).sorted() == ["0\n", "1\n", "2\n"])
            #expect(store.states.count == 1, "\(store.states)")
            // Another machine shape is another snapshot.
            _ = try await store.run("true", memoryMiB: 128)
            #expect(store.states.count == 2, "\(store.states)")
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries == before.runtimeEntries, "\(after)")
        }
    }
}
