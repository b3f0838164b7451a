/// A driver that can start VMM processes ahead of the VMs that will use them (QEMU's standby
/// QEMUs). The worker runs ``runStandby()`` beside its jobs and cancels it when it stops.
public protocol VMMStandbyDriver: MicroVMDriver {
    /// Keeps VMM processes ready until the calling task is cancelled, then leaves none behind.
    func runStandby() async
}
