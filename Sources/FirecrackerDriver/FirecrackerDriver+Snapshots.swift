#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MicroVM

/// What is Firecracker's own in snapshot starts: the key. Saving and loading are steps of a
/// ``FirecrackerVM`` (FirecrackerVM+Snapshots.swift); when to make, restore or discard a snapshot is
/// ``VMBoot``'s (MicroVM), shared with QEMU.
extension FirecrackerDriver {
    /// Everything that shapes the saved machine, as the driver would configure it: a change to any
    /// of it (or to the binary, kernel or root filesystem) makes a new snapshot.
    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey {
        guard let binary = FirecrackerInstallation.resolveExecutable(configuration.firecrackerPath) else {
            throw VMError(.vmmUnavailable, "firecracker binary \(configuration.firecrackerPath) not found (not on PATH and not an executable path)")
        }
        let layout: FirecrackerLayout =
            configuration.jailer.map {
                .jailed(chrootBaseDirectory: $0.chrootBaseDirectory, execFileName: binary.lastPathComponent, vmID: "template")
            } ?? .plain(runtimeDirectory: vm.runtimeDirectory, vmID: "template", image: vm.image)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let machine = try encoder.encode(MachineConfiguration(vcpuCount: vm.vcpus, memSizeMib: vm.memoryMiB, smt: false))
        let drive = try encoder.encode(
            Drive(driveId: "rootfs", pathOnHost: layout.inVMM(layout.rootfs), isRootDevice: true, isReadOnly: true))
        return SnapshotKey(
            format: "codebench-firecracker-snapshot 1",
            files: [("firecracker", binary), ("kernel", vm.image.kernelPath), ("rootfs", vm.image.rootfsPath)],
            machine: [
                "machine-config " + String(decoding: machine, as: UTF8.self),
                "boot-args " + configuration.effectiveBootArguments,
                "drive " + String(decoding: drive, as: UTF8.self),
                "vsock guest_cid=\(configuration.guestCID) agent_port=\(configuration.agentVsockPort)",
                "entropy-device \(configuration.entropyDevice ? "on" : "off")",
                "jailer \(configuration.jailer == nil ? "off" : "on")",
            ] + TemplateWarmup.key(
                configuration.snapshotWarmup, preparingFor: vm.expectedJobLimits, jobs: vm.snapshotPreparedJobs,
                forkServers: vm.snapshotForkServers))
    }
}
