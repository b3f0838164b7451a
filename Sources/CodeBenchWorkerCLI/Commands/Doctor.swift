import ArgumentParser
import FirecrackerDriver
import Foundation
import Logging
import MicroVM
import QEMUDriver
import Worker

/// `codebench-worker doctor`: which VMM can run job VMs here, exactly why the others cannot, and
/// which protections each runs with (``VMMProtections``). It asks the same ``DriverSelection`` as
/// `run`, with `vmm=auto` and every VMM booted.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check which VMMs can run job VMs on this host (Firecracker, QEMU+KVM, QEMU+TCG) and why not.",
        discussion: """
            Each VMM is checked the way an operator fixes things: binary, version, /dev/kvm, guest image, then a real \
            probe boot of the image to the agent's hello (KVM can be present yet unusable). Lists each VMM's protections \
            (separate uid, capabilities, namespaces, root, seccomp, cgroup, rlimits, parent-death signal) as `run` would \
            start it with the worker's settings (--config, --set, CODEBENCH_*). Prints what `--vmm auto` picks: \
            Firecracker, else QEMU with KVM, else QEMU with TCG. Exits 0 when some VMM is usable, 1 otherwise.
            """
    )

    @Option(help: "Directory with vmlinux and rootfs.ext4 (default: $CODEBENCH_IMAGE_DIR or /var/cache/codebench/image/current).")
    var imageDir: String?
    @Option(help: "The firecracker binary: a name looked up on PATH, or a path.") var firecracker = "firecracker"
    @Option(help: "Also check this jailer binary (production runs Firecracker under the jailer).") var jailer: String?
    @Option(help: "The qemu-system-x86_64 binary.") var qemu = QEMUDriver.Configuration().binaryPath
    @Option(help: "Seconds each probe boot may take (a nested-KVM failure shows after ~12 s).") var probeTimeout = 40
    @Flag(help: "Only the static checks (binaries, versions, /dev/kvm, image); no probe boots.") var noBoot = false
    @Option(help: "The worker's snapshot directory, reported on.") var snapshotDir = QEMUDriver.Configuration.defaultSnapshotDirectory
    @Option(help: "Log level of the probes' own logs on stderr.") var logLevel = "critical"
    @Option(help: "The worker's JSON config file (also CODEBENCH_CONFIG): protections are reported as `run` would start VMs.")
    var config: String?
    @Option(name: .customLong("set"), help: "A worker setting, as name=value (repeatable), e.g. qemu-jail=off.") var settings: [String] = []

    func validate() throws {
        guard probeTimeout > 0 else { throw ValidationError("--probe-timeout must be positive") }
    }

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        let logger = Logger(label: "codebench.doctor")
        // The worker's settings (flags, CODEBENCH_* variables, config file), for the protections block.
        let worker = try WorkerConfigurationLoader(
            flags: try SettingAssignments.parse(settings), environment: ProcessInfo.processInfo.environment, configFile: config
        ).load()
        let image = GuestImage.at(imageDir ?? GuestImage.defaultDirectory)

        print("codebench-worker doctor")
        DoctorReport.printHostFacts(image: image)
        DoctorReport.printSnapshots(directory: snapshotDir)

        var prober = VMMProber(image: image, thoroughness: noBoot ? .staticChecks : .everything, bootTimeout: .seconds(probeTimeout))
        prober.firecracker.firecrackerPath = firecracker
        if let jailer { prober.firecracker.jailer = JailerConfiguration(jailerPath: jailer) }
        prober.qemu.binaryPath = qemu
        let decision = await DriverSelection.select(
            vmm: .auto, qemuAccelerator: .auto, prober: prober, logger: logger, report: DoctorReport.printProbe)

        let qemuAccelerator: QEMUDriver.Accelerator =
            switch try? decision.choice.get() {
            case .qemuKVM?: .kvm
            case .qemuTCG?: .tcg
            default: worker.qemuAccelerator == .kvm ? .kvm : .tcg
            }
        let jailProblems = DriverSelection.qemuConfiguration(qemuAccelerator, worker).jail.map { QEMUJailProbe().problems(for: $0) } ?? []
        print("")
        VMMProtections.report(
            worker: worker, qemuAccelerator: qemuAccelerator, firecracker: prober.firecracker, jailProblems: jailProblems
        ).forEach { print($0) }

        print("")
        if noBoot {
            // Without probe boots nothing is proven usable; say which VMMs passed the static checks.
            let candidates = decision.probes.filter(\.staticChecksOnly).map(\.kind.rawValue)
            print("--vmm auto: undecided without probe boots; would try, in order: \(candidates.isEmpty ? "nothing" : candidates.joined(separator: ", "))")
            if candidates.isEmpty { throw ExitCode(1) }
            return
        }
        switch decision.choice {
        case .success(let choice):
            print("--vmm auto picks: \(choice)")
        case .failure(let error):
            print("--vmm auto picks: nothing; \(error.message)")
            throw ExitCode(1)
        }
    }
}
