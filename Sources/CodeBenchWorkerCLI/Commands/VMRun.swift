import AgentProtocol
import ArgumentParser
import Foundation
import Languages
import Logging
import MicroVM
import QEMUDriver
import Worker

/// `codebench-worker vm run -- uname -a`: one request in one fresh QEMU microVM, with timings.
struct VMRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a shell command (after --) or a program (--language, --file) in a fresh microVM.",
        discussion: "Prints stdout, stderr, exit code, verdict and the boot/run/total times. Exits 0 when the run completed (whatever its verdict), 2 when the VM failed."
    )

    @Option(help: "Guest memory in MiB.") var memoryMib = 256
    @Option(help: "Guest vCPUs.") var vcpus = 1
    @Option(help: "Wall-time limit of the run in milliseconds (the host waits 10 s longer).") var timeoutMs = 10_000
    @Option(help: "Memory limit of the job in MiB (cgroup inside the guest).") var jobMemoryMib = 256
    @Option(help: "Bytes kept per output stream.") var outputLimit = 1 << 20
    @Option(help: "Language of --file: a name or alias of the image's (codebench-worker languages lists them).") var language: String?
    @Option(help: "Source file to run with --language.") var file: String?
    @Option(help: "File whose content is the program's stdin.") var stdinFile: String?
    @Option(help: "tcg, kvm or auto (auto probes KVM once per host boot, here usually TCG).") var accelerator = "auto"
    @Option(help: "Directory with vmlinux and rootfs.ext4 (default: $CODEBENCH_IMAGE_DIR or /var/cache/codebench/image/current).")
    var imageDir: String?
    @Option(help: "Directory for per-VM sockets.") var runtimeDir = "/run/codebench"
    @Option(help: "Start from a snapshot kept in this directory (made on first use); 'none' boots cold.")
    var snapshotDir = QEMUDriver.Configuration.defaultSnapshotDirectory
    @Option(help: "Command the snapshot's template VM runs before it is saved; 'none' for none.")
    var snapshotWarmup = QEMUDriver.Configuration.defaultSnapshotWarmup
    @Flag(help: "Run QEMU unjailed, as root (the worker's qemu-jail=off; docs/security.md).") var unjailed = false
    @Option(help: "How a VM is restored from its snapshot: streamed or copy-on-write (the worker's qemu-restore).")
    var qemuRestore = QEMUDriver.RestoreMode.streamed.rawValue
    @Flag(help: "Print where the guest agent's time went, phase by phase (RunRequest.tracePhases).") var tracePhases = false
    @Option(help: "trace, debug (shows the boot steps), info, notice, warning, error.") var logLevel = "warning"
    @Argument(parsing: .postTerminator, help: "The shell command, after --.") var command: [String] = []

    func validate() throws {
        if language != nil || file != nil {
            guard language != nil, file != nil else { throw ValidationError("--language and --file go together") }
            guard command.isEmpty else { throw ValidationError("give either a command after -- or --language/--file, not both") }
        } else if command.isEmpty {
            throw ValidationError("nothing to run: give a command after -- (e.g. vm run -- uname -a) or --language and --file")
        }
        guard QEMUAcceleratorChoice(rawValue: accelerator) != nil else { throw ValidationError("--accelerator must be tcg, kvm or auto") }
        guard QEMUDriver.RestoreMode(rawValue: qemuRestore) != nil else { throw ValidationError("--qemu-restore must be streamed or copy-on-write") }
    }

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        let logger = Logger(label: "codebench.vm")

        let workload: Workload
        if let language, let file {
            let registry = try LanguageRegistry.image(directory: imageDir ?? GuestImage.defaultDirectory)
            guard let parsed = registry.language(named: language) else {
                throw ValidationError("unknown language \(language); one of \(registry.names.joined(separator: ", "))")
            }
            workload = .program(language: Language(parsed.name), source: try String(contentsOfFile: file, encoding: .utf8))
        } else {
            workload = .shell(command: ShellWords.commandLine(command))
        }
        let stdin = try stdinFile.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? Data()
        var request = RunRequest(
            id: "vm-run-\(getpid())", workload: workload, stdin: stdin,
            limits: ResourceLimits(wallTimeMilliseconds: timeoutMs, memoryBytes: jobMemoryMib << 20, maxOutputBytesPerStream: outputLimit))
        request.tracePhases = tracePhases

        let vm = VMConfiguration(
            image: imageDir.map { GuestImage.at($0) } ?? .at(), vcpus: vcpus, memoryMiB: memoryMib, runtimeDirectory: runtimeDir)
        var qemu = QEMUDriver.Configuration(
            snapshotDirectory: snapshotDir == "none" ? nil : snapshotDir, snapshotWarmup: snapshotWarmup == "none" ? nil : snapshotWarmup,
            jail: unjailed ? nil : QEMUJail())
        qemu.restoreMode = QEMUDriver.RestoreMode(rawValue: qemuRestore) ?? .streamed
        qemu.accelerator = try await Self.accelerator(
            QEMUAcceleratorChoice(rawValue: accelerator) ?? .auto, image: vm.image, runtimeDirectory: runtimeDir, logger: logger)
        let driver = QEMUDriver(configuration: qemu)

        let clock = ContinuousClock()
        let start = clock.now
        do {
            let (result, boot, runTime) = try await driver.withVM(vm, logger: logger) { session in
                // As the worker does: an image with an older agent would ignore fields it does not know.
                if let problem = session.hello.problem(running: request) { throw ValidationError(problem) }
                let runStart = clock.now
                let result = try await session.run(request, timeout: .milliseconds(timeoutMs) + .seconds(10))
                return (result, session.bootDuration, clock.now - runStart)
            }
            let total = clock.now - start
            print("--- stdout\(result.stdoutTruncated ? " (truncated)" : "") ---")
            print(String(decoding: result.stdout, as: UTF8.self), terminator: result.stdout.last == 10 || result.stdout.isEmpty ? "" : "\n")
            print("--- stderr\(result.stderrTruncated ? " (truncated)" : "") ---")
            print(String(decoding: result.stderr, as: UTF8.self), terminator: result.stderr.last == 10 || result.stderr.isEmpty ? "" : "\n")
            if let compile = result.compileOutput, !compile.isEmpty {
                print("--- compiler ---")
                print(String(decoding: compile, as: UTF8.self))
            }
            print("---")
            print("verdict: \(result.verdict.rawValue)\(result.message.map { " (\($0))" } ?? "")")
            print("exit code: \(result.exitCode.map { "\($0)" } ?? "none")\(result.signal.map { ", signal \($0)" } ?? "")")
            print("guest: wall \(result.wallTimeMilliseconds) ms, cpu \(result.cpuTimeMilliseconds) ms, peak memory \(result.peakMemoryBytes >> 10) KiB")
            print("timings: boot \(Self.seconds(boot)) s, run \(Self.seconds(runTime)) s, total \(Self.seconds(total)) s (\(driver.name))")
            for phase in result.phases ?? [] {
                print("phase: \(phase.name) \(String(format: "%.1f", Double(phase.microseconds) / 1000)) ms")
            }
        } catch let error as VMError {
            var message = "codebench-worker vm run: \(error) (after \(Self.seconds(clock.now - start)) s)\n"
            if let tail = error.consoleTail { message += "--- guest console (tail) ---\n\(tail)\n" }
            FileHandle.standardError.write(Data(message.utf8))
            throw ExitCode(2)
        }
    }

    /// The worker's own choice for `vmm=qemu`, with probe results remembered in the runtime directory
    /// for this host boot: a one-shot command should not pay a failing KVM probe every time.
    static func accelerator(
        _ choice: QEMUAcceleratorChoice, image: GuestImage, runtimeDirectory: String, logger: Logger
    ) async throws -> QEMUDriver.Accelerator {
        let prober = VMMProber(image: image, thoroughness: .start, memoDirectory: runtimeDirectory)
        let decision = await DriverSelection.select(vmm: .qemu, qemuAccelerator: choice, prober: prober, logger: logger)
        logger.notice("QEMU accelerator chosen", metadata: ["probes": "\(decision.probes.map(\.description))"])
        switch decision.choice {
        case .success(let kind):
            if let accelerator = QEMUDriver.Accelerator(kind) { return accelerator }
            throw ValidationError("vmm=qemu chose \(kind)")
        case .failure(let error):
            FileHandle.standardError.write(Data("codebench-worker vm run: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.3f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}
