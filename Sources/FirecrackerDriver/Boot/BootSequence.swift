#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MicroVM

/// The boot of one VM, in order: validate → prepare runtime dir → spawn → wait socket → logger →
/// metrics → machine config → boot source → root drive → entropy → vsock → InstanceStart →
/// connect agent → await hello. Firecracker requires every device before `InstanceStart`;
/// the logger comes first so that Firecracker's explanation of any later failure is captured.
enum BootSequence {
    static func steps(entropyDevice: Bool) -> [BootStep] {
        var steps: [BootStep] = [
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
}
