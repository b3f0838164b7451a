import AgentProtocol
import Logging
import MicroVM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension QEMUDriver {
    /// Whether an accelerator can boot the image here, and why (for logs and `doctor`).
    public struct ProbeResult: Sendable, Hashable, CustomStringConvertible {
        public var usable: Bool
        public var reason: String

        public init(usable: Bool, reason: String) {
            self.usable = usable
            self.reason = reason
        }

        public var description: String { "\(usable ? "usable" : "unusable"): \(reason)" }
    }

    /// Boots `image` once under `accelerator` (`.auto` probes KVM) and reports whether the agent said
    /// hello within `configuration.kvmProbeTimeout`. KVM can be present yet unusable: on nested
    /// "PVM" KVM an ordinary kernel dies in KVM's instruction emulator ("emulation failure").
    public static func probe(
        accelerator: Accelerator,
        image: GuestImage = .at(),
        configuration: Configuration = Configuration(),
        logger: Logger
    ) async -> ProbeResult {
        let resolved: QEMUCommandLine.ResolvedAccelerator = accelerator == .tcg ? .tcg : .kvm
        if resolved == .kvm {
            let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
            guard fd >= 0 else {
                return ProbeResult(usable: false, reason: "/dev/kvm cannot be opened: \(String(cString: strerror(errno)))")
            }
            close(fd)
        }
        do {
            try validateImage(image)
        } catch {
            return ProbeResult(usable: false, reason: "\(error)")
        }
        var driverConfiguration = configuration
        driverConfiguration.accelerator = resolved == .tcg ? .tcg : .kvm
        let driver = QEMUDriver(configuration: driverConfiguration)
        let vm = VMConfiguration(image: image, memoryMiB: 128, bootTimeout: configuration.kvmProbeTimeout)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let boot = try await driver.withVM(vm, logger: logger) { session in session.bootDuration }
            return ProbeResult(usable: true, reason: "the agent said hello \(BootSteps.milliseconds(boot)) ms after launch under \(resolved.rawValue)")
        } catch is CancellationError {
            return ProbeResult(usable: false, reason: "the probe was cancelled")
        } catch {
            var reason = "no agent hello under \(resolved.rawValue) within \(BootSteps.milliseconds(clock.now - start)) ms"
            if let vmError = error as? VMError {
                reason += ": \(vmError.message)"
                // The telling line ("KVM internal error. Suberror: 1 ... emulation failure") is on QEMU's stderr.
            } else {
                reason += ": \(error)"
            }
            return ProbeResult(usable: false, reason: reason)
        }
    }
}

/// The choice for `.auto`: probed once per process and key (QEMU binary, kernel), and remembered in
/// a small file under the runtime root keyed by host boot id and the binary's and kernel's mtimes, so
/// that short-lived processes (the CLI, test runs) do not pay the KVM probe's timeout every time.
enum AcceleratorChoice {
    private struct Key: Hashable {
        var binaryPath: String
        var kernelPath: String
    }

    private static let choices = Mutex<[Key: Task<QEMUCommandLine.ResolvedAccelerator, Never>]>([:])
    private static let settled = Mutex<[String: QEMUCommandLine.ResolvedAccelerator]>([:])

    /// The settled choice for a binary, if a probe has finished (for ``QEMUDriver/name``).
    static func cached(configuration: QEMUDriver.Configuration, image: GuestImage?) -> QEMUCommandLine.ResolvedAccelerator? {
        settled.withLock { $0[configuration.binaryPath] }
    }

    static func resolve(
        configuration: QEMUDriver.Configuration, image: GuestImage, runtimeRoot: String, logger: Logger
    ) async -> QEMUCommandLine.ResolvedAccelerator {
        let key = Key(binaryPath: configuration.binaryPath, kernelPath: image.kernelPath)
        let task = choices.withLock { choices in
            if let task = choices[key] { return task }
            let task = Task {
                let choice = await choose(configuration: configuration, image: image, runtimeRoot: runtimeRoot, logger: logger)
                settled.withLock { $0[configuration.binaryPath] = choice }
                return choice
            }
            choices[key] = task
            return task
        }
        return await task.value
    }

    private static func choose(
        configuration: QEMUDriver.Configuration, image: GuestImage, runtimeRoot: String, logger: Logger
    ) async -> QEMUCommandLine.ResolvedAccelerator {
        let cacheFile = runtimeRoot + "/qemu-accelerator"
        let cacheKey = [
            readText("/proc/sys/kernel/random/boot_id") ?? "?", configuration.binaryPath, mtime(configuration.binaryPath),
            image.kernelPath, mtime(image.kernelPath),
        ].joined(separator: " ")
        if let cached = readText(cacheFile) {
            let lines = cached.split(separator: "\n", maxSplits: 2).map(String.init)
            if lines.count == 3, lines[0] == cacheKey, let choice = QEMUCommandLine.ResolvedAccelerator(rawValue: lines[1]) {
                logger.notice(
                    "QEMU accelerator chosen (probe result cached for this host boot)",
                    metadata: ["accelerator": "\(choice.rawValue)", "kvm_probe": "\(lines[2])", "cache": "\(cacheFile)"])
                return choice
            }
        }
        let result = await QEMUDriver.probe(accelerator: .kvm, image: image, configuration: configuration, logger: logger)
        let choice: QEMUCommandLine.ResolvedAccelerator = result.usable ? .kvm : .tcg
        logger.notice("QEMU accelerator chosen", metadata: ["accelerator": "\(choice.rawValue)", "kvm_probe": "\(result)"])
        let reason = result.description.split(separator: "\n").joined(separator: " ")
        if let file = fopen(cacheFile, "w") {
            fputs("\(cacheKey)\n\(choice.rawValue)\n\(reason)\n", file)
            fclose(file)
        }
        return choice
    }

    private static func mtime(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "?" }
        return "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 1024)
        while text.utf8.count < 16 << 10, fgets(&buffer, Int32(buffer.count), file) != nil {
            text += buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return text.trimming(" \n")
    }
}
