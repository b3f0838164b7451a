import Logging

/// How a VM comes up.
public enum BootPurpose: Sendable, Hashable {
    /// The kernel boots and the agent says hello.
    case cold
    /// A cold boot of the VM a snapshot is saved from; it runs only our warm-up, never a job.
    case template
    /// Restored from the snapshot in this store directory; the agent is resumed (fresh entropy, the
    /// host's clock) before it is used.
    case restore(snapshot: String)
}

/// What a driver supplies to ``VMBoot``, which owns the algorithm (restore from a snapshot, else boot
/// cold, and discard a snapshot the VMM refused): the driver's VMs, their steps, and what only the
/// driver knows about its VMM's failures and snapshot files.
///
/// Conformers are internal types of the drivers (their VMs are internal), wrapped by the public
/// driver's `withVM`.
public protocol BootableVMM: Sendable {
    /// One VM while it is brought up; ``tearDown(_:)`` releases whatever its steps acquired.
    associatedtype VM: BootingVM
    associatedtype Session: GuestSession

    /// The snapshot store VMs shaped like `vm` start from, or nil when they boot cold.
    func snapshotDirectory(for vm: VMConfiguration) -> String?
    /// The fixed command of ours a template runs before it is saved, so the files every job needs are
    /// in the restored guest's page cache; nil saves the guest as it booted.
    var snapshotWarmup: String? { get }
    /// Bound of the warm-up and of saving the snapshot.
    var snapshotSaveTimeout: Duration { get }

    /// A VM with nothing acquired yet.
    func makeVM(_ vm: VMConfiguration, purpose: BootPurpose, logger: Logger) -> VM
    /// The steps that bring a VM up for `purpose`, in order.
    func steps(for purpose: BootPurpose) -> [BootStep<VM>]
    /// The session of a VM whose steps all ran.
    func session(of vm: VM) throws -> Session
    /// `error` as the caller should see it: which step (nil: after the steps, a template's warm-up
    /// or save), what the VMM said, the console tail. Cancellation must pass through unchanged.
    func failure(_ error: any Error, step: String?, of vm: VM) async -> any Error
    /// Whether a restore that failed with `failure` (as ``failure(_:step:of:)`` returned it) says the
    /// snapshot itself is bad, so that it is removed and made again; a busy or broken host is not.
    func snapshotRefused(by vm: VM, failure: any Error) -> Bool
    /// Releases everything `vm` acquired; completes even when the task is cancelled. Returns the host
    /// CPU time its VMM process used (``VMMProcess/cpuTime``), nil when the driver could not reap it.
    @discardableResult
    func tearDown(_ vm: VM) async -> Duration?

    /// The key of the snapshot for VMs shaped like `vm` (its image already resolved); throws when
    /// none can be made for it (the VMM is missing, say).
    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey
    /// Writes the state of the booted, warmed-up `template` into the store's `partial` directory.
    func saveSnapshot(of template: VM, into partial: String) async throws
}
