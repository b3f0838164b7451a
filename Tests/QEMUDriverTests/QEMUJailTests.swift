import AgentProtocol
import Logging
import MicroVM
import TestSupport
import Testing

@testable import QEMUDriver

#if canImport(Glibc)
import Glibc
#endif

/// The jail with real VMs (docs/security.md): what a running job's QEMU can see and do.
@Suite(.serialized) final class QEMUJailTests {
    /// After each test: the runtime root is empty by then (every VM torn down), so it goes too.
    deinit { rmdir(Self.runtimeRoot) }

    static let driver = QEMUDriver(configuration: .init(accelerator: .tcg, jail: QEMUJail()))
    /// Its own runtime root: other suites' censuses of VMTest.runtimeRoot must not see these VMs.
    static let runtimeRoot = "/tmp/cbj-\(getpid())"

    static func configuration() throws -> VMConfiguration {
        var vm = try VMTest.configuration()
        vm.runtimeDirectory = runtimeRoot
        return vm
    }

    static func withJailedVM<T: Sendable>(_ vm: VMConfiguration, _ body: (any GuestSession) async throws -> T) async throws -> T {
        do {
            return try await driver.withVM(vm, logger: VMTest.logger, body)
        } catch let error as VMError {
            throw DiagnosedVMError(error: error)
        }
    }

    /// The jailed QEMUs of this test process: `qemu-system` processes whose parent (the launcher,
    /// `codebench-jail`) names a runtime directory under `runtimeRoot`.
    static func jailedQEMUs(under runtimeRoot: String) -> [Int32] {
        RuntimeDirectory.entries(of: "/proc").compactMap { name -> Int32? in
            guard let pid = Int32(name), let stat = ProcessStat.of(pid: pid), stat.name.hasPrefix("qemu-system") else { return nil }
            let parentCommandLine = (readSmallFile("/proc/\(stat.parent)/cmdline") ?? "").replacingNULs
            return parentCommandLine.contains(runtimeRoot + "/") ? pid : nil
        }
    }

    static func field(_ name: String, in status: String) -> String? {
        status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map {
            $0.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }
    }

    static func namespace(_ pid: String, _ kind: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/\(pid)/ns/\(kind)", &buffer, buffer.count - 1)
        return length > 0 ? String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// Mount point → its per-mount options, from a `/proc/<pid>/mountinfo` (fields 5 and 6).
    static func mountOptions(_ mountinfo: String) -> [String: Set<String>] {
        var options: [String: Set<String>] = [:]
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 5 else { continue }
            options[String(fields[4])] = Set(fields[5].split(separator: ",").map(String.init))
        }
        return options
    }

    @Test func aRunningJobsQEMUIsUnprivilegedConfinedAndLimited() async throws {
        let vm = try Self.configuration()
        let root = vm.runtimeDirectory
        let observed = try await Self.withJailedVM(vm) { session in
            async let result = session.run(VMTest.request("sleep 3; echo done"), timeout: .seconds(20))
            var pids: [Int32] = []
            _ = await eventually(timeout: .seconds(5)) {
                pids = Self.jailedQEMUs(under: root)
                return !pids.isEmpty
            }
            var observations: [String: String] = [:]
            if let pid = pids.first {
                let status = readSmallFile("/proc/\(pid)/status") ?? ""
                for name in ["Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "Seccomp", "NoNewPrivs"] {
                    observations[name] = Self.field(name, in: status) ?? "?"
                }
                for kind in ["mnt", "pid", "ipc", "uts", "net"] {
                    observations["ns " + kind] = Self.namespace("\(pid)", kind) == Self.namespace("self", kind) ? "shared" : "own"
                }
                observations["sees /etc/shadow"] = "\(access("/proc/\(pid)/root/etc/shadow", F_OK) == 0)"
                observations["sees /work"] = "\(access("/proc/\(pid)/root/work", F_OK) == 0)"
                observations["sees /tmp"] = "\(access("/proc/\(pid)/root/tmp", F_OK) == 0)"
                observations["sees its kernel"] = "\(access("/proc/\(pid)/root/vm/kernel", F_OK) == 0)"
                for (point, options) in Self.mountOptions(readSmallFile("/proc/\(pid)/mountinfo") ?? "") {
                    observations["mount " + point] = options.sorted().joined(separator: ",")
                }
                let interfaces = (readSmallFile("/proc/\(pid)/net/dev") ?? "").split(separator: "\n").dropFirst(2)
                    .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
                observations["interfaces"] = interfaces.joined(separator: ",")
                let cgroups = (readSmallFile("/proc/\(pid)/cgroup") ?? "").split(separator: "\n")
                observations["in a VM cgroup"] = "\(cgroups.contains { $0.contains("/codebench-qemu/") })"
                let limits = readSmallFile("/proc/\(pid)/limits") ?? ""
                observations["file size limit"] = limits.split(separator: "\n").first { $0.hasPrefix("Max file size") }.map(String.init) ?? "?"
                if let memory = cgroups.first(where: { $0.contains(":memory:") || $0.hasPrefix("0::") }) {
                    let path = String(memory.split(separator: ":", maxSplits: 2)[2])
                    let v2 = QEMUCgroup.isV2Host
                    let file = QEMUCgroup.root + (v2 ? "" : "/memory") + path + (v2 ? "/memory.max" : "/memory.limit_in_bytes")
                    observations["memory limit"] = readSmallFile(file)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                }
            }
            let finished = try await result
            observations["job"] = finished.stdoutText
            return observations
        }
        #expect(observed["job"] == "done\n")
        let uid = observed["Uid"]?.split(separator: " ").first.flatMap { UInt32($0) } ?? 0
        #expect(QEMUJail().uidRange.contains(uid), "\(observed)")
        #expect(observed["Gid"]?.hasPrefix("\(QEMUJail().gid) ") == true)
        for set in ["CapEff", "CapPrm", "CapBnd"] { #expect(observed[set] == "0000000000000000", "\(set): \(observed)") }
        #expect(observed["Seccomp"] == "2")
        #expect(observed["NoNewPrivs"] == "1")
        for kind in ["mnt", "pid", "ipc", "uts", "net"] { #expect(observed["ns " + kind] == "own", "\(kind): \(observed)") }
        #expect(observed["sees /etc/shadow"] == "false")
        #expect(observed["sees /work"] == "false")
        #expect(observed["sees /tmp"] == "false")
        #expect(observed["sees its kernel"] == "true")
        // Each of the launcher's mounts with the flags it asked for: one `mount --bind -o` must apply them.
        let required: [String: Set<String>] = [
            "/": ["ro", "nosuid", "nodev"], "/usr": ["ro", "nosuid", "nodev"], "/vm/kernel": ["ro", "nosuid", "nodev", "noexec"],
            "/vm/rootfs": ["ro", "nosuid", "nodev", "noexec"], "/run/vm": ["nosuid", "nodev", "noexec"],
            "/dev/null": ["nosuid", "noexec"], "/dev/urandom": ["ro", "nosuid", "noexec"],
        ]
        for (point, flags) in required {
            let options = Set((observed["mount " + point] ?? "").split(separator: ",").map(String.init))
            #expect(flags.isSubset(of: options), "\(point): \(observed["mount " + point] ?? "not mounted")")
        }
        #expect(observed["mount /run/vm"]?.split(separator: ",").contains("rw") == true, "QEMU's sockets are made there")
        #expect(observed["mount /proc"] == nil, "a streamed VM's QEMU keeps no proc")
        #expect(observed["interfaces"] == "lo")
        #expect(observed["in a VM cgroup"] == "true")
        let expected = QEMUCgroup.memoryLimitBytes(memoryMiB: vm.memoryMiB, translationCacheMiB: 64, limits: QEMUCgroupLimits())
        #expect(observed["memory limit"] == "\(expected)")
        #expect(observed["file size limit"]?.contains("\(16 << 20)") == true)
        // Torn down: no jailed QEMU, no VM cgroup left.
        #expect(Self.jailedQEMUs(under: root).isEmpty)
    }

    /// The translation-cache attack of issue 12: fresh machine code written and run in a loop. The
    /// cache is bounded (tb-size) and QEMU stays inside its cgroup; the job ends, the next one runs.
    @Test func freshCodeInALoopStaysInsideTheCgroup() async throws {
        let program = """
            import mmap, ctypes, time
            size = 32 << 20
            m = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            base = ctypes.addressof(ctypes.c_char.from_buffer(m))
            end, n, calls = time.time() + 20, 0, 0
            while time.time() < end:
                for off in range(0, size, 4096):
                    m[off:off + 6] = b"\\xb8" + ((n * 7919 + off) & 0xffffffff).to_bytes(4, "little") + b"\\xc3"
                    ctypes.CFUNCTYPE(ctypes.c_uint)(base + off)()
                    calls += 1
                    if time.time() >= end: break
                n += 1
            print("calls", calls)
            """
        let vm = try Self.configuration()
        let root = vm.runtimeDirectory
        var peakRSSKiB = 0
        let (first, next) = try await Self.withJailedVM(vm) { session in
            async let result = session.run(
                VMTest.request("python3 -c '\(program.replacingOccurrences(of: "'", with: "'\\''"))'", wallMs: 40_000),
                timeout: .seconds(60))
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(25)
            var peak = 0
            while clock.now < deadline {
                for pid in Self.jailedQEMUs(under: root) {
                    let status = readSmallFile("/proc/\(pid)/status") ?? ""
                    let rss = Self.field("VmRSS", in: status)?.split(separator: " ").first.flatMap { Int($0) } ?? 0
                    peak = max(peak, rss)
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            let first: Result<RunResult, any Error>
            do { first = .success(try await result) } catch { first = .failure(error) }
            peakRSSKiB = peak
            return (first, session.isAlive ? try? await session.run(VMTest.request("echo next"), timeout: .seconds(20)) : nil)
        }
        let limitKiB = QEMUCgroup.memoryLimitBytes(memoryMiB: vm.memoryMiB, translationCacheMiB: 64, limits: QEMUCgroupLimits()) >> 10
        print("fresh-code job: peak QEMU RSS \(peakRSSKiB >> 10) MiB, cgroup limit \(limitKiB >> 10) MiB, result \(first)")
        #expect(peakRSSKiB > 0)
        #expect(peakRSSKiB <= limitKiB)
        switch first {
        case .success(let result):
            // It ran its course inside the limits, or was stopped with a reason.
            #expect(result.verdict == .ok || result.message?.isEmpty == false, "\(result.summary)")
            #expect(next?.stdoutText == "echo next" || next?.stdoutText == "next\n")
        case .failure(let error):
            // Killed by its cgroup: the error says so.
            #expect("\(error)".contains("OOM"), "\(error)")
        }
        // The next job runs, on a fresh VM.
        let after = try await Self.withJailedVM(vm) { try await $0.run(VMTest.request("echo after"), timeout: .seconds(20)) }
        #expect(after.stdoutText == "after\n")
    }

    /// A worker SIGKILLed mid-job: its QEMU dies with it (parent-death signal on the launcher, which
    /// SIGKILLs QEMU, init of the VM's PID namespace).
    @Test func aKilledParentLeavesNoQEMU() async throws {
        let vm = try Self.configuration()
        let directory = try RuntimeDirectory.create(under: vm.runtimeDirectory, prefix: "k")
        defer { directory.remove() }
        let uid: UInt32 = QEMUJail().uidRange.upperBound
        for (name, owner) in [(QEMUJailDirectory.sockets, uid), (QEMUJailDirectory.root, 0)] {
            #expect(mkdir(directory.file(name), 0o700) == 0 && chown(directory.file(name), owner, owner == 0 ? 0 : QEMUJail().gid) == 0)
        }
        let launcher = QEMUJailLauncher(
            jail: QEMUJail(cgroup: nil), qemuPath: QEMUDriver.Configuration().binaryPath, rootMountPoint: directory.file(QEMUJailDirectory.root),
            socketDirectory: directory.file(QEMUJailDirectory.sockets), kernelPath: vm.image.kernelPath, rootfsPath: vm.image.rootfsPath,
            uid: uid, bindKVM: false, fileSizeLimit: 1 << 20)
        var line = QEMUCommandLine(
            configuration: .init(), vm: vm.resolvingSymlinks(), accelerator: .tcg, agentSocketPath: QEMUJail.Path.run + "/agent.sock", tscKHz: HostTSC.kHz)
        line.jailed = true
        // The "worker": a shell that starts the launcher as its child and waits.
        let quoted = ([launcher.executable] + launcher.arguments(qemuArguments: line.arguments)).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let worker = try await VMMProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", quoted.joined(separator: " ") + " & wait"],
            stdout: ConsoleRing(capacity: 1 << 16), stderr: ConsoleRing(capacity: 1 << 16))
        let started = await eventually(timeout: .seconds(10)) { access(directory.file(QEMUJailDirectory.sockets + "/agent.sock"), F_OK) == 0 }
        #expect(started, "\(worker.stderr.tail(maxBytes: 2000))")
        #expect(!Self.jailedQEMUs(under: vm.runtimeDirectory).isEmpty)
        // Only the "worker" shell: SIGKILL it alone, not its process group.
        kill(worker.pid, SIGKILL)
        _ = await worker.waitForExitIgnoringCancellation()
        try await Task.sleep(for: .seconds(2))
        #expect(Self.jailedQEMUs(under: vm.runtimeDirectory).isEmpty)
        let leftovers = RuntimeDirectory.entries(of: "/proc").filter { name in
            (readSmallFile("/proc/\(name)/cmdline") ?? "").replacingNULs.contains(directory.path + "/")
        }
        #expect(leftovers.isEmpty, "still running: \(leftovers)")
        await worker.closeOutputs()
    }
}

extension QEMUJailTests {
    /// A jailed template is saved through a descriptor the worker hands QEMU on QMP (the file is
    /// outside the jail, QEMU may not spawn), and jailed VMs restore from it.
    @Test func aJailedTemplateIsSavedAndRestoredVMsRunJobs() async throws {
        let store = "/tmp/cbj-snap-\(getpid())"
        defer { _ = try? runShell("rm -rf \(store)") }
        var configuration = Self.driver.configuration
        configuration.snapshotDirectory = store
        let driver = QEMUDriver(configuration: configuration)
        let vm = try Self.configuration()
        var hellos: [AgentHello] = []
        for index in 0..<2 {
            let (hello, result) = try await driver.withVM(vm, logger: VMTest.logger) { session in
                (session.hello, try await session.run(VMTest.request("echo run \(index)"), timeout: .seconds(20)))
            }
            #expect(result.stdoutText == "run \(index)\n", "\(result.summary)")
            hellos.append(hello)
        }
        let states = (try? runShell("ls \(store)/*/state 2>/dev/null"))?.split(separator: "\n") ?? []
        #expect(states.count == 1, "one snapshot saved: \(states)")
        let owner = try runShell("stat -c %u:%a \(states.first ?? "/nonexistent")")
        #expect(owner == "0:600", "the state belongs to the worker, not the VM's uid: \(owner)")
        #expect(hellos.allSatisfy { $0.resumeNonce != nil }, "both jobs ran in restored VMs")
        #expect(Self.jailedQEMUs(under: vm.runtimeDirectory).isEmpty)
    }

    /// A jailed VM with network reaches only the listener in its own network namespace, which the
    /// worker's one egress proxy serves: nothing is spawned per connection, a flood of connections
    /// is capped per VM and leaves no zombie.
    @Test func aJailedNetworkVMGoesOutOnlyThroughTheOneProxy() async throws {
        var vm = try Self.configuration()
        vm.network = true
        let probe = """
            import socket, time
            def direct(host, port):
                try:
                    socket.create_connection((host, port), timeout=2).close()
                    return "open"
                except OSError:
                    return "blocked"
            def connect(target):
                s = socket.create_connection(("10.0.2.100", 3128), timeout=10)
                s.sendall(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (target, target)).encode())
                line = s.recv(200).split(b"\\r\\n")[0].decode()
                s.close()
                return line
            print("host-ssh", direct("10.0.2.2", 22))
            print("other-port", direct("10.0.2.100", 22))
            print("internet", direct("1.1.1.1", 443))
            print("loopback", connect("127.0.0.1:6379"))
            print("metadata", connect("169.254.169.254:80"))
            # 500 connections, 50 held open at a time: the proxy serves 16 at once and refuses the rest.
            answers = {}
            for round in range(10):
                held = []
                for _ in range(50):
                    try:
                        held.append(socket.create_connection(("10.0.2.100", 3128), timeout=10))
                    except OSError as error:
                        answers["error"] = answers.get("error", 0) + 1
                for s in held:
                    try:
                        s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\\r\\n\\r\\n")
                        s.settimeout(10)
                        line = s.recv(100).split(b" ")[1].decode()
                    except (OSError, IndexError):
                        line = "closed"
                    answers[line] = answers.get(line, 0) + 1
                    s.close()
            print("flood", " ".join("%s=%d" % item for item in sorted(answers.items())))
            """
        let request = RunRequest(
            id: "jail-net", workload: .program(language: .python, source: probe),
            limits: ResourceLimits(wallTimeMilliseconds: 120_000, memoryBytes: 256 << 20, maxProcesses: 64, maxOutputBytesPerStream: 1 << 20))
        let (result, qemuChildren, proxies) = try await Self.withJailedVM(vm) { session in
            let result = try await session.run(request, timeout: .seconds(150))
            let qemus = Self.jailedQEMUs(under: vm.runtimeDirectory)
            let children = qemus.flatMap { Self.children(of: $0) }
            return (result, children, Self.processes(named: "codebench-egres"))
        }
        let lines = Dictionary(
            result.stdoutText.split(separator: "\n").map { line in
                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                return (parts[0], parts.count > 1 ? parts[1] : "")
            }, uniquingKeysWith: { first, _ in first })
        #expect(result.verdict == .ok, "\(result.summary)")
        #expect(lines["host-ssh"] == "blocked", "\(result.summary)")
        #expect(lines["other-port"] == "blocked", "\(result.summary)")
        #expect(lines["internet"] == "blocked", "\(result.summary)")
        #expect(lines["loopback"]?.hasPrefix("HTTP/1.1 403") == true, "\(result.summary)")
        #expect(lines["metadata"]?.hasPrefix("HTTP/1.1 403") == true, "\(result.summary)")
        // Every one of the 500 got an answer: 403 (the address check) while a slot was free, else 503.
        let flood = Dictionary(
            (lines["flood"] ?? "").split(separator: " ").compactMap { pair -> (String, Int)? in
                let parts = pair.split(separator: "=")
                return parts.count == 2 ? (String(parts[0]), Int(parts[1]) ?? 0) : nil
            }, uniquingKeysWith: +)
        print("QEMUJailTests: 500 connections from one jailed VM: \(flood.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), proxy processes \(proxies.count), QEMU children \(qemuChildren.count)")
        #expect(flood.values.reduce(0, +) == 500, "\(flood)")
        #expect((flood["403"] ?? 0) > 0, "\(flood)")
        #expect(qemuChildren.isEmpty, "QEMU spawned nothing: \(qemuChildren)")
        #expect(proxies.count == 1, "one proxy process for the worker: \(proxies)")
        for pid in proxies {
            let status = readSmallFile("/proc/\(pid)/status") ?? ""
            #expect(Self.field("Uid", in: status)?.hasPrefix("\(QEMUJail().egressProxyUID) ") == true, "\(status)")
            #expect(Self.field("CapEff", in: status) == "0000000000000000")
            #expect(Self.field("NoNewPrivs", in: status) == "1")
            #expect(Self.children(of: pid).isEmpty, "the proxy spawns nothing")
        }
        #expect(Self.jailedQEMUs(under: vm.runtimeDirectory).isEmpty)
    }

    /// The parent-death signal fires when the *thread* that spawned the launcher exits; Swift's
    /// pool retires idle threads after about 5 s. A job that outlives that must not lose its VM.
    @Test func aJailedVMOutlivesIdleWorkerThreads() async throws {
        let result = try await Self.withJailedVM(try Self.configuration()) { session in
            try await session.run(VMTest.request("sleep 9; echo still here"), timeout: .seconds(30))
        }
        #expect(result.stdoutText == "still here\n", "\(result.summary)")
    }

    /// A worker with allow-network checks its proxy at start: a missing binary and one that dies at
    /// once are errors that say so, not a ready worker whose network jobs all fail.
    @Test func theEgressProxyIsCheckedAtStart() async throws {
        let missing = QEMUDriver(configuration: .init(accelerator: .tcg, egressProxyPath: "/nonexistent/codebench-egress", jail: QEMUJail()))
        await #expect(throws: VMError.self) { try await missing.prepareNetwork() }
        // /bin/false takes any arguments and exits 1: the proxy "exited at start".
        let dying = QEMUDriver(configuration: .init(accelerator: .tcg, egressProxyPath: "/bin/false", jail: QEMUJail()))
        do {
            try await dying.prepareNetwork()
            Issue.record("a proxy that exits at once was accepted")
        } catch let error as VMError {
            #expect(error.message.contains("exited at start"), "\(error)")
        }
        try await Self.driver.prepareNetwork()
        let proxies = Self.processes(named: "codebench-egres")
        #expect(!proxies.isEmpty)
    }

    static func children(of parent: Int32) -> [Int32] { VMProcessCensus.children(of: parent) }

    static func processes(named comm: String) -> [Int32] {
        RuntimeDirectory.entries(of: "/proc").compactMap { name -> Int32? in
            guard let pid = Int32(name), let stat = readSmallFile("/proc/\(name)/stat") else { return nil }
            return stat.contains("(\(comm))") ? pid : nil
        }
    }

}

extension String {
    fileprivate var replacingNULs: String { replacingOccurrences(of: "\0", with: " ") }
}

extension QEMUJailTests {
    /// A jailed VM restores copy-on-write: its QEMU maps the template's sealed memfd privately
    /// through the jail's pid-only proc, and loads only device state.
    @Test func aJailedVMRestoresCopyOnWrite() async throws {
        let store = "/tmp/cbj-cow-\(getpid())"
        defer { _ = try? runShell("rm -rf \(store)") }
        var configuration = Self.driver.configuration
        configuration.snapshotDirectory = store
        configuration.restoreMode = .copyOnWrite
        #expect(configuration.effectiveRestoreMode == .copyOnWrite)
        let driver = QEMUDriver(configuration: configuration)
        let vm = try Self.configuration()
        for index in 0..<2 {
            let usage = VMUsageRecorder()
            let (hello, result, maps, proc, kernel) = try await driver.withVM(vm, logger: VMTest.logger, usage: usage.record) { session in
                let pids = Self.jailedQEMUs(under: vm.runtimeDirectory)
                let maps = pids.first.flatMap { readSmallFile("/proc/\($0)/maps") } ?? ""
                let proc = pids.first.map { RuntimeDirectory.entries(of: "/proc/\($0)/root/proc").sorted() } ?? []
                let kernel = pids.first.map { access("/proc/\($0)/root/vm/kernel", F_OK) == 0 }
                return (session.hello, try await session.run(VMTest.request("echo run \(index)"), timeout: .seconds(20)), maps, proc, kernel)
            }
            // A restored guest's memory holds its kernel: the jail has no kernel image to read.
            #expect(kernel == false, "the jail of a restored VM has /vm/kernel")
            #expect(result.stdoutText == "run \(index)\n", "\(result.summary)")
            #expect(hello.resumeNonce != nil, "restored, not cold-booted")
            // Guest RAM: a private (`p`), writable mapping of the memfd, never a shared one.
            let guestRAM = maps.split(separator: "\n").filter { $0.contains("/memfd:codebench-template") }
            #expect(!guestRAM.isEmpty && guestRAM.allSatisfy { $0.split(separator: " ")[1] == "rw-p" }, "\(guestRAM)")
            // The jail's proc: QEMU itself (PID 1 of its namespace) and nothing else of the host's.
            #expect(proc == ["1", "self", "thread-self"], "\(proc)")
            // The VM's cost is the launcher's and, reaped by it, QEMU's with the guest: the launcher
            // alone is a few milliseconds, QEMU's start-up alone over 20 (docs/snapshots.md).
            let cpu = try #require(usage.usage.vmmCPUTime)
            #expect(cpu > .milliseconds(20), "\(cpu)")
        }
        let files = try runShell("cd \(store) && ls */").split(separator: "\n").map(String.init)
        #expect(files.contains("state") && files.contains("memory") && files.contains("memory.id"), "a copy-on-write snapshot: \(files)")
        let stateBytes = Int(try runShell("stat -c %s \(store)/*/state").filter(\.isNumber)) ?? .max
        #expect(stateBytes < 1 << 20, "the state holds no guest RAM: \(stateBytes) bytes")
        #expect(Self.jailedQEMUs(under: vm.runtimeDirectory).isEmpty)
    }
}

extension QEMUJailTests {
    /// The leftover sweep of a starting driver spares a VM cgroup it cannot tell from another
    /// worker's just-made one (another runtime root, still empty): an empty cgroup without a VM
    /// directory is a leftover only once it is older than a VM's set-up can take.
    @Test func theLeftoverSweepSparesAYoungCgroupOfAnotherRuntimeRoot() throws {
        let name = "qsweep\(getpid())"
        let cgroup = try QEMUCgroup.create(name: name, memoryLimitBytes: 64 << 20, vcpus: 1, limits: QEMUCgroupLimits())
        defer { cgroup.remove() }
        let otherRoot = "/tmp/cbj-sweep-\(getpid())"
        #expect(!cgroup.directories.isEmpty)
        for directory in cgroup.directories {
            #expect(!QEMUCgroup.isLeftover(directory, named: name, runtimeRoot: otherRoot, minimumAge: .seconds(60)), "made a moment ago")
            #expect(QEMUCgroup.isLeftover(directory, named: name, runtimeRoot: otherRoot, minimumAge: .zero), "old enough, empty, no VM directory")
        }
        #expect(mkdir(otherRoot, 0o700) == 0 && mkdir(otherRoot + "/" + name, 0o700) == 0)
        defer { rmdir(otherRoot + "/" + name); rmdir(otherRoot) }
        for directory in cgroup.directories {
            #expect(!QEMUCgroup.isLeftover(directory, named: name, runtimeRoot: otherRoot, minimumAge: .zero), "its VM directory exists")
        }
    }
}

extension QEMUJailTests {
    /// A jailed VM torn down leaves no QEMU behind, not even a zombie for the host's init to reap:
    /// QEMU is killed before its launcher, which reaps it.
    @Test func aDestroyedJailedVMLeavesNoZombieQEMU() async throws {
        let vm = try Self.configuration()
        let pids = try await Self.withJailedVM(vm) { _ in Self.jailedQEMUs(under: vm.runtimeDirectory) }
        #expect(pids.count == 1, "\(pids)")
        for pid in pids {
            #expect(access("/proc/\(pid)", F_OK) != 0, "QEMU \(pid) is still there: \(readSmallFile("/proc/\(pid)/stat") ?? "")")
        }
    }
}
