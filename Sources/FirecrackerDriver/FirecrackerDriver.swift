import AgentProtocol
import Logging
import MicroVM
import NIOCore
import NIOPosix

/// Boots each VM with Firecracker (the production VMM), optionally under its jailer, and talks to
/// the guest agent over Firecracker's vsock (host side: a Unix socket and a `CONNECT` line).
///
/// Needs a working `/dev/kvm` and the `firecracker` binary (see docs/firecracker.md). A VM is brought
/// up by MicroVM's ``VMBoot`` (restored from a snapshot when ``Configuration/snapshotDirectory`` is
/// set, else cold) in a fixed list of named steps (``FirecrackerBoot``), each timed and logged;
/// whatever happens, including cancellation, the VMM's process group is killed, reaped and its files
/// removed before ``withVM(_:logger:_:)`` returns.
public struct FirecrackerDriver: MicroVMDriver {
    public let configuration: Configuration
    private let uidPool: UIDPool?
    private let eventLoopGroup: any EventLoopGroup

    public var name: String { "firecracker" }

    public init(configuration: Configuration = Configuration(), eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.uidPool = configuration.jailer.map { UIDPool(range: $0.uidRange) }
        self.eventLoopGroup = eventLoopGroup
    }

    /// The names of the boot steps, in order (for logs, docs and tests).
    public var bootStepNames: [String] {
        FirecrackerBoot(driver: self).steps(for: .cold).map(\.name)
    }

    /// The names of the steps of a VM restored from a snapshot, in order.
    public var restoreStepNames: [String] {
        FirecrackerBoot(driver: self).steps(for: .restore(snapshot: "")).map(\.name)
    }

    public func withVM<T: Sendable>(
        _ vmConfiguration: VMConfiguration,
        logger: Logger,
        usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        try await VMBoot(FirecrackerBoot(driver: self)).withVM(vmConfiguration, logger: logger, usage: usage, body)
    }

    /// A VM with a fresh id; nothing exists for it until its steps run.
    func makeVM(_ vmConfiguration: VMConfiguration, logger: Logger) -> FirecrackerVM {
        let id = "cb-" + String(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff, radix: 16)
        var logger = logger
        logger[metadataKey: "vm"] = "\(id)"
        logger[metadataKey: "vmm"] = "firecracker"
        return FirecrackerVM(
            id: id, configuration: vmConfiguration, driver: configuration, uidPool: uidPool, logger: logger,
            group: eventLoopGroup)
    }

    /// Turns a step's failure into a ``VMError`` that says which step, what Firecracker said
    /// (`fault_message`) and, when the VMM died, how; and logs it.
    func failure(step: String, error: any Error, vm: FirecrackerVM) -> any Error {
        if error is CancellationError { return error }
        if let apiError = error as? FirecrackerAPIError, apiError.code == .cancelled { return CancellationError() }
        let death = vm.vmmDeath()
        let diagnostics = vm.diagnostics()
        var vmError: VMError
        switch error {
        case let apiError as FirecrackerAPIError:
            vmError = VMError(.vmmAPI, "boot step \(step): \(apiError)")
            vm.logger.error(
                "firecracker refused a boot step",
                metadata: [
                    "step": "\(step)", "status": "\(apiError.status.map(String.init) ?? "-")",
                    "fault_message": "\(apiError.faultMessage ?? apiError.detail)",
                ])
        case let existing as VMError:
            vmError = existing
            vmError.message = "boot step \(step): \(existing.message)"
        default:
            vmError = VMError(.bootFailed, "boot step \(step): \(error)")
        }
        if let death, !vmError.message.contains(death) {
            vmError.message += " (\(death))"
        }
        let log = vm.firecrackerLog.tail(maxBytes: 1024)
        if !log.isEmpty && vmError.code != .vmmAPI {
            vmError.message += "; firecracker log: \(log)"
        }
        if vmError.consoleTail == nil && !diagnostics.isEmpty { vmError.consoleTail = diagnostics }
        vm.logger.error("VM boot failed", metadata: ["step": "\(step)", "error": "\(vmError.message)"])
        return vmError
    }
}
