import AgentProtocol
import Logging
import MicroVM

/// One QEMU VM while ``VMBoot`` brings it up: what its steps created so far (``resources``), so that
/// teardown releases exactly that. Used by one task only.
final class QEMUVM: BootingVM {
    /// The VM's shape; its image is resolved by the `validate` step, so the kernel and root
    /// filesystem come from one image even if `image/current` is re-pointed meanwhile.
    var configuration: VMConfiguration
    /// Gains the runtime directory and QEMU's pid as the steps learn them.
    var logger: Logger
    var resources = VMResources()
    /// The agent's virtio-serial socket, in the runtime directory.
    var agentSocketPath = ""
    /// When QEMU was spawned: a session's boot duration counts from here.
    var spawnedAt: ContinuousClock.Instant?
    var hello: AgentHello?
    /// A copy-on-write template: the memfd its QEMU writes the guest's RAM into (also in
    /// `resources.heldDescriptors` until it is persisted), and for which snapshot.
    var templateMemory: (fd: CInt, snapshotName: String)?
    /// The snapshot's memory file did not match its record: the snapshot is refused, never mapped.
    var snapshotMemoryChanged = false
    /// A copy-on-write restore's snapshot record (`memory.id`), once its descriptors are open.
    var snapshotIdentity: String?
    /// Its QEMU was a standby spawned ahead (``QEMUStandbyPool``): the runtime directory and spawn
    /// steps have nothing left to do.
    var adoptedStandby = false
    /// Spawned as a standby (``QEMUStandbyPool``): its cgroup starts with the standby CPU weight.
    var spawnsStandby = false
    let clock = ContinuousClock()
    /// The whole boot is bounded by the VM's boot timeout, counted from the first step.
    let deadline: ContinuousClock.Instant

    init(configuration: VMConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        deadline = clock.now + configuration.bootTimeout
    }

    /// What is left of the boot timeout.
    var remaining: Duration { max(.zero, deadline - clock.now) }
}
