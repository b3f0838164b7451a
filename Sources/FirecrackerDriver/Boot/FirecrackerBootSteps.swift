import MicroVM

/// The boot of one VM, in order: validate → prepare runtime dir → spawn → wait socket → logger →
/// metrics → machine config → boot source → root drive → entropy → vsock → InstanceStart →
/// connect agent → await hello. Firecracker requires every device before `InstanceStart`;
/// the logger comes first so that Firecracker's explanation of any later failure is captured.
///
/// A restore replaces everything from the machine config to `InstanceStart` with one snapshot
/// load (Firecracker accepts it only on a fresh process, after the logger and metrics at most), and
/// the hello with a resume of the agent.
extension FirecrackerBoot {
    static func coldSteps(entropyDevice: Bool) -> [BootStep<FirecrackerVM>] {
        var steps = start() + [
            BootStep("put-machine-config") { vm in
                try await vm.api().putMachineConfiguration(
                    MachineConfiguration(vcpuCount: vm.configuration.vcpus, memSizeMib: vm.configuration.memoryMiB, smt: false))
            },
            BootStep("put-boot-source") { vm in
                try await vm.api().putBootSource(
                    BootSource(kernelImagePath: vm.layout.inVMM(vm.layout.kernel), bootArgs: vm.driver.effectiveBootArguments))
            },
            BootStep("put-drive-rootfs") { vm in
                try await vm.api().putDrive(
                    Drive(driveId: "rootfs", pathOnHost: vm.layout.inVMM(vm.layout.rootfs), isRootDevice: true, isReadOnly: true))
            },
        ]
        if entropyDevice {
            steps.append(BootStep("put-entropy") { vm in try await vm.api().putEntropyDevice() })
        }
        steps += [
            BootStep("put-vsock") { vm in
                try await vm.api().putVsock(Vsock(guestCid: vm.driver.guestCID, udsPath: vm.layout.inVMM(vm.layout.vsockSocket)))
            },
            BootStep("instance-start") { vm in try await vm.api().startInstance() },
            BootStep("connect-agent") { try await $0.connectAgent() },
            BootStep("await-hello") { try await $0.awaitHello() },
        ]
        return steps
    }

    /// The steps of a VM restored from the snapshot in the store directory `snapshot`.
    static func restoreSteps(snapshot: String) -> [BootStep<FirecrackerVM>] {
        var steps = start()
        steps.insert(BootStep("link-snapshot") { try $0.linkSnapshot(from: snapshot) }, at: 2)
        steps += [
            BootStep("load-snapshot") { try await $0.loadSnapshot() },
            BootStep("connect-agent") { try await $0.connectAgent() },
            BootStep("resume-agent") { try await $0.resumeAgent() },
        ]
        return steps
    }

    /// Restore steps whose failure means the snapshot is bad rather than the host busy or broken.
    static let stepsAfterLoad: Set<String> = ["load-snapshot", "connect-agent", "resume-agent"]

    /// Common to both: up to a fresh Firecracker process with its logger and metrics.
    private static func start() -> [BootStep<FirecrackerVM>] {
        [
            BootStep("validate") { try $0.validate() },
            BootStep("prepare-runtime-dir") { try $0.prepareRuntimeDirectory() },
            BootStep("spawn") { try await $0.spawn() },
            BootStep("wait-api-socket") { try await $0.waitForAPISocket() },
            BootStep("put-logger") { vm in
                try await vm.startDraining(fifo: vm.layout.logFIFO, into: vm.firecrackerLog)
                try await vm.api().putLogger(
                    FirecrackerLogger(logPath: vm.layout.inVMM(vm.layout.logFIFO), level: vm.driver.logLevel))
            },
            BootStep("put-metrics") { vm in
                try await vm.startDraining(fifo: vm.layout.metricsFIFO, into: vm.metrics)
                try await vm.api().putMetrics(Metrics(metricsPath: vm.layout.inVMM(vm.layout.metricsFIFO)))
            },
        ]
    }
}
