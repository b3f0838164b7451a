import MicroVM

/// The QEMU microvm command line for one VM. Pure, so it can be checked without booting.
struct QEMUCommandLine: Sendable, Hashable {
    /// The virtio-serial port name the agent looks for in /sys/class/virtio-ports/*/name.
    static let agentPortName = "org.codebench.agent"
    /// The init the image installs.
    static let guestInit = "/sbin/codebench-init"

    var configuration: QEMUDriver.Configuration
    var vm: VMConfiguration
    var accelerator: QEMUDriver.Accelerator
    var agentSocketPath: String
    var tscKHz: Int?
    /// A QMP monitor socket: only the VM a snapshot is saved from has one.
    var qmpSocketPath: String?
    /// Load this saved state (``SnapshotStore``) instead of booting the kernel.
    var incomingStatePath: String?
    /// The descriptor QEMU reads ``incomingStatePath`` from.
    static let incomingStateFD = QEMUJail.Path.incomingFD
    /// For a VM with network: the runtime directory the egress proxy keeps its slots and log in.
    var egressStateDirectory: String?
    /// Copy-on-write restores (``QEMUDriver/RestoreMode/copyOnWrite``): guest RAM is this file.
    var memoryFile: MemoryFile?
    /// Wait for QMP `migrate-incoming` (a copy-on-write restore sets `x-ignore-shared` first, which
    /// QEMU 7.2 accepts only over QMP) instead of loading ``incomingStatePath`` at start.
    var incomingDeferred = false
    /// QEMU runs in ``QEMUJail``: the image and the snapshot are where the jail puts
    /// them (``QEMUJail/Path``), and QEMU's seccomp sandbox is on.
    var jailed = false

    var kernelPath: String { jailed ? QEMUJail.Path.kernel : vm.image.kernelPath }
    var rootfsPath: String { jailed ? QEMUJail.Path.rootfs : vm.image.rootfsPath }

    /// QEMU's seccomp filter: no obsolete system calls, no set*uid, no resource-limit changes, and no
    /// fork/exec (a jailed VM's egress proxy is the worker's, not QEMU's child).
    var sandboxArguments: [String] {
        guard jailed else { return [] }
        return ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    }

    /// The guest's only way out, to the egress proxy at 10.0.2.100:3128 (fixed in the agent's GuestNetwork).
    ///
    /// Jailed: user networking whose host address is 10.0.2.100, so slirp turns the guest's
    /// connections to it into connections to 127.0.0.1 of QEMU's own network namespace. That
    /// namespace holds only its loopback and the listener the worker puts there for the proxy
    /// (``NamespaceListener``): every other address is unreachable, whatever slirp is asked.
    ///
    /// Unjailed (QEMU in the host's namespace): `restrict=on` (no route to the host or anywhere) and
    /// one forwarded address, whose every connection QEMU hands to a fresh proxy process on its stdin/stdout.
    var networkArguments: [String] {
        guard vm.network else { return [] }
        if jailed {
            return [
                "-netdev", "user,id=net0,ipv6=off,net=10.0.2.0/24,host=\(Self.guestProxyAddress)",
                "-device", "virtio-net-device,netdev=net0",
            ]
        }
        guard let egressStateDirectory else { return [] }
        let command = ([
            configuration.resolvedEgressProxyPath,
            "--allow-ports", configuration.egressPorts.map(String.init).joined(separator: ","),
            "--slots-dir", egressStateDirectory, "--max-connections", "\(Self.egressConnectionsPerVM)",
            "--log-file", egressStateDirectory + "/egress.log",
        ] + configuration.egressAllowedAddresses.flatMap { ["--allow-address", $0] }).joined(separator: " ")
        return [
            "-netdev",
            "user,id=net0,restrict=on,ipv6=off,net=10.0.2.0/24,guestfwd=tcp:\(Self.guestProxyAddress):\(Self.guestProxyPort)-cmd:\(Self.escapeOption(command))",
            "-device", "virtio-net-device,netdev=net0",
        ]
    }

    /// Where the guest finds its proxy (GuestNetwork in the agent says the same).
    static let guestProxyAddress = "10.0.2.100"
    static let guestProxyPort: UInt16 = 3128
    /// Tunnels one VM may hold open at once (docs/network.md).
    static let egressConnectionsPerVM = 16

    /// Kernel command line. `quiet` because every console byte costs time in the emulated UART;
    /// `panic=-1` with QEMU's `-no-reboot` turns a guest panic into a QEMU exit, which the host sees at once.
    var kernelArguments: [String] {
        var arguments = [
            "console=ttyS0", "root=/dev/vda", "rootfstype=ext4", "ro", "init=\(Self.guestInit)",
            "quiet", "panic=-1", "random.trust_cpu=on",
        ]
        if accelerator == .tcg {
            if let tscKHz {
                // Under TCG the TSC calibration against the emulated PIT sometimes hangs.
                arguments += ["tsc_early_khz=\(tscKHz)", "tsc=reliable"]
            }
            // TCG does not execute the guest speculatively, so the guest kernel's speculation
            // mitigations protect nothing and only cost emulated instructions.
            arguments.append("mitigations=off")
            // The IO-APIC timer check counts ticks in a short window; a loaded host misses it and the
            // kernel panics ("IO-APIC + timer doesn't work!"). QEMU's timer routing is known good.
            arguments.append("no_timer_check")
            if vm.vcpus == 1 {
                // Without TSC-deadline (TCG has none) the guest calibrates and then verifies its local
                // APIC timer against jiffies, busy-waiting ~0.15 s of every boot. One vCPU needs no
                // per-CPU timer: the PIT serves as the clock event device (timers measured accurate).
                arguments.append("noapictimer")
            }
        }
        return arguments + configuration.extraKernelArguments
    }

    var accelArgument: String {
        switch accelerator {
        case .kvm:
            return "kvm"
        case .tcg:
            var option = "tcg"
            if let tb = configuration.tcgTranslationCacheMiB { option += ",tb-size=\(tb)" }
            return option
        }
    }

    /// `max` offers the guest every instruction set extension QEMU can give it. Under TCG without
    /// XSAVE: the kernel then saves FPU state with FXSAVE, which is cheaper to emulate on every context
    /// switch (measured: ~0.2 s less QEMU CPU time per boot-and-run). Under KVM `host` aborts on nested
    /// PVM KVM (MSR 0x10a), and so does `max`, which the boot probe reports.
    var cpuModel: String {
        if let model = configuration.cpuModel { return model }
        return accelerator == .tcg ? "max,-xsave" : "max"
    }

    /// Whether QEMU loads the kernel: not for a restore, whose guest memory comes from the snapshot
    /// (loading and parsing the kernel's ELF, ~20 MB, would only be thrown away). The snapshot's key
    /// still names the kernel.
    var bootsKernel: Bool { !incomingDeferred && incomingStatePath == nil }

    /// Arguments after argv[0].
    var arguments: [String] {
        var machine = machineArguments
        if !bootsKernel, let kernel = machine.firstIndex(of: "-kernel") {
            machine.removeSubrange(kernel...(kernel + 3))
        }
        var arguments = sandboxArguments + machine + networkArguments
        if let qmpSocketPath {
            arguments += ["-qmp", "unix:\(Self.escapeOption(qmpSocketPath)),server=on,wait=off"]
        }
        if incomingDeferred {
            arguments += ["-incoming", "defer"]
        } else if incomingStatePath != nil {
            // Whoever spawns QEMU opened the state read-only as descriptor 3: the jail's launcher (the
            // file is not in the jail), or the driver. Not `exec:cat <path>`: a shell and a `cat`
            // piping the ~60 MB state cost ~50 ms more host CPU per restore than QEMU reading the file.
            // Once loaded, the VM runs on at once: it was saved running, idle in the agent's poll().
            arguments += ["-incoming", "fd:\(Self.incomingStateFD)"]
        }
        return arguments
    }

    /// The machine itself: what a saved state and the VM restoring it must agree on.
    var machineArguments: [String] {
        [
            // acpi=off: with ACPI the minimal kernel loses user-space console output; it finds the
            // virtio-mmio devices from the command line QEMU appends instead.
            "-M", memoryFile == nil ? "microvm,acpi=off" : "microvm,acpi=off,memory-backend=\(Self.memoryBackendID)",
        ] + memoryBackendArguments + [
            "-accel", accelArgument,
            "-cpu", cpuModel,
            "-m", "\(vm.memoryMiB)",
            "-smp", "\(vm.vcpus)",
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", kernelPath,
            "-append", kernelArguments.joined(separator: " "),
            "-drive", "id=root,file=\(Self.escapeOption(rootfsPath)),format=raw,if=none,read-only=on",
            "-device", "virtio-blk-device,drive=root",
            // Entropy at once: the Swift runtime's getrandom would otherwise block for about a second.
            "-device", "virtio-rng-device",
            "-device", "virtio-serial-device",
            "-chardev", "socket,id=agent,path=\(Self.escapeOption(agentSocketPath)),server=on,wait=off",
            "-device", "virtserialport,chardev=agent,name=\(Self.agentPortName)",
            // The guest console goes to QEMU's stdout (drained into a ring), QEMU's own messages to stderr.
            "-chardev", "stdio,id=console,signal=off",
            "-serial", "chardev:console",
        ]
    }

    /// Guest RAM in a file. `shared` (the template) writes the guest's memory into the file;
    /// private (a restored VM) maps it copy-on-write: the VM's writes go to pages of its own and
    /// never reach the file or another VM.
    struct MemoryFile: Sendable, Hashable {
        var path: String
        var shared: Bool
    }

    static let memoryBackendID = "mem"

    var memoryBackendArguments: [String] {
        guard let memoryFile else { return [] }
        return [
            "-object",
            "memory-backend-file,id=\(Self.memoryBackendID),size=\(vm.memoryMiB)M,mem-path=\(Self.escapeOption(memoryFile.path)),share=\(memoryFile.shared ? "on" : "off")",
        ]
    }

    /// QEMU option values separate fields with commas; a literal comma is written twice.
    static func escapeOption(_ value: String) -> String {
        var escaped = ""
        for character in value {
            escaped.append(character)
            if character == "," { escaped.append(",") }
        }
        return escaped
    }
}
