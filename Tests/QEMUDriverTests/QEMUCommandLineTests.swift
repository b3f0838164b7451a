import MicroVM
import Testing

@testable import QEMUDriver

@Suite struct QEMUCommandLineTests {
    func commandLine(
        accelerator: QEMUDriver.Accelerator = .tcg,
        configuration: QEMUDriver.Configuration = .init(),
        vm: VMConfiguration = VMConfiguration(image: GuestImage(kernelPath: "/img/vmlinux", rootfsPath: "/img,x/rootfs.ext4"), vcpus: 2, memoryMiB: 192)
    ) -> QEMUCommandLine {
        QEMUCommandLine(configuration: configuration, vm: vm, accelerator: accelerator, agentSocketPath: "/run/cb/q1/agent.sock", tscKHz: 2_596_138)
    }

    func value(after flag: String, in arguments: [String]) -> [String] {
        arguments.indices.filter { arguments[$0] == flag && $0 + 1 < arguments.count }.map { arguments[$0 + 1] }
    }

    @Test func describesAMinimalMicroVM() {
        let arguments = commandLine().arguments
        #expect(value(after: "-M", in: arguments) == ["microvm,acpi=off"])
        // The translation cache is bounded by default: it is part of each VM's cgroup memory limit.
        #expect(value(after: "-accel", in: arguments) == ["tcg,tb-size=\(QEMUDriver.Configuration.defaultTranslationCacheMiB)"])
        #expect(value(after: "-cpu", in: arguments) == ["max,-xsave"])
        #expect(value(after: "-cpu", in: commandLine(accelerator: .kvm).arguments) == ["max"])
        #expect(value(after: "-m", in: arguments) == ["192"])
        #expect(value(after: "-smp", in: arguments) == ["2"])
        #expect(value(after: "-kernel", in: arguments) == ["/img/vmlinux"])
        for flag in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] { #expect(arguments.contains(flag)) }
        // A comma in a path is doubled so QEMU does not read it as an option separator.
        #expect(value(after: "-drive", in: arguments) == ["id=root,file=/img,,x/rootfs.ext4,format=raw,if=none,read-only=on"])
        #expect(value(after: "-chardev", in: arguments).contains("socket,id=agent,path=/run/cb/q1/agent.sock,server=on,wait=off"))
        #expect(value(after: "-device", in: arguments).contains("virtserialport,chardev=agent,name=org.codebench.agent"))
        #expect(value(after: "-device", in: arguments).contains("virtio-rng-device"))
        // No network device of any kind.
        #expect(!arguments.contains { $0.contains("netdev") || $0.contains("virtio-net") })
    }

    @Test func aVMWithNetworkGetsRestrictedUserNetworkingWithTheEgressProxyAsItsOnlyForward() {
        var vm = VMConfiguration(image: GuestImage(kernelPath: "/img/vmlinux", rootfsPath: "/img/rootfs.ext4"), network: true)
        var line = commandLine(configuration: .init(egressProxyPath: "/opt/cb/codebench-egress", egressPorts: [443]), vm: vm)
        // Without its state directory (set at boot) there is no network at all, never an unfiltered one.
        #expect(!line.arguments.contains { $0.contains("netdev") })
        line.egressStateDirectory = "/run/cb/q7"
        let arguments = line.arguments
        #expect(value(after: "-netdev", in: arguments) == [
            "user,id=net0,restrict=on,ipv6=off,net=10.0.2.0/24,guestfwd=tcp:10.0.2.100:3128-cmd:/opt/cb/codebench-egress --allow-ports 443 --slots-dir /run/cb/q7 --max-connections 16 --log-file /run/cb/q7/egress.log",
        ])
        #expect(value(after: "-device", in: arguments).contains("virtio-net-device,netdev=net0"))
        // Not part of the machine a snapshot is keyed by: network VMs boot cold.
        #expect(!line.machineArguments.contains { $0.contains("net0") })
        vm.network = false
        line.vm = vm
        #expect(!line.arguments.contains { $0.contains("netdev") || $0.contains("virtio-net") })
    }

    @Test func templateAndRestoredVMsShareTheMachineAndDifferOnlyInMonitorAndIncoming() throws {
        let cold = commandLine()
        var template = cold
        template.qmpSocketPath = "/run/cb/q1/qmp.sock"
        var restored = cold
        restored.incomingStatePath = "/var/cache/codebench/snapshots/0123/state"
        #expect(template.machineArguments == cold.arguments)
        #expect(restored.machineArguments == cold.arguments)
        #expect(template.arguments == cold.arguments + ["-qmp", "unix:/run/cb/q1/qmp.sock,server=on,wait=off"])
        // A restored VM loads no kernel (its memory is the snapshot's); its key still names it.
        var withoutKernel = cold.arguments
        let kernel = try #require(withoutKernel.firstIndex(of: "-kernel"))
        #expect(withoutKernel[kernel + 2] == "-append")
        withoutKernel.removeSubrange(kernel...(kernel + 3))
        // The state is QEMU's descriptor 3 (opened by the driver), never a shell command naming its path.
        #expect(restored.arguments == withoutKernel + ["-incoming", "fd:3"])
        var deferred = cold
        deferred.incomingDeferred = true
        #expect(!deferred.arguments.contains("-kernel") && !deferred.arguments.contains("-append"))
        #expect(restored.machineArguments.contains("-kernel"), "the key's machine names the kernel")
    }

    @Test func snapshotKeysChangeWithTheMachineAndNameNoVMsSocket() {
        func key(memoryMiB: Int = 192, warmup: String? = nil) -> SnapshotKey {
            var line = commandLine(vm: VMConfiguration(image: GuestImage(kernelPath: "/img/vmlinux", rootfsPath: "/img/rootfs.ext4"), memoryMiB: memoryMiB))
            line.agentSocketPath = SnapshotKey.socketPlaceholder
            return QEMUDriver.snapshotKey(binaryPath: "/usr/bin/true", image: line.vm.image, machine: line, warmup: warmup)
        }
        #expect(key() == key())
        #expect(key().name != key(memoryMiB: 256).name)
        #expect(key().name != key(warmup: "true").name)
        #expect(key().name.count == 32)
        #expect(key().text.contains("machine socket,id=agent,path=\(SnapshotKey.socketPlaceholder),server=on,wait=off"))
        #expect(key().text.contains("qemu /usr/bin/true size="))
    }

    @Test func snapshotDirectoriesThatAShellCouldMisreadAreRefused() {
        #expect(throws: VMError.self) { try SnapshotStore(root: "/tmp/snap; rm -rf /") }
        #expect(throws: VMError.self) { try SnapshotStore(root: "relative/dir") }
        #expect(throws: VMError.self) { try SnapshotStore(root: "/tmp/../etc") }
        #expect(throws: Never.self) { try SnapshotStore(root: "/var/cache/codebench/snapshots") }
    }

    @Test func kernelCommandLineCarriesTheTCGWorkarounds() {
        var configuration = QEMUDriver.Configuration()
        configuration.extraKernelArguments = ["loglevel=4"]
        let append = value(after: "-append", in: commandLine(configuration: configuration).arguments).first ?? ""
        let words = append.split(separator: " ").map(String.init)
        for expected in ["console=ttyS0", "root=/dev/vda", "ro", "init=/sbin/codebench-init", "tsc_early_khz=2596138", "tsc=reliable", "random.trust_cpu=on", "panic=-1", "quiet", "mitigations=off", "no_timer_check"] {
            #expect(words.contains(expected), "missing \(expected) in \(append)")
        }
        #expect(words.last == "loglevel=4")
    }

    @Test func oneVCPUUnderTCGSkipsTheAPICTimer() {
        let words = { (line: QEMUCommandLine) in (self.value(after: "-append", in: line.arguments).first ?? "").split(separator: " ").map(String.init) }
        var vm = VMConfiguration(image: GuestImage(kernelPath: "/k", rootfsPath: "/r"), vcpus: 1)
        #expect(words(commandLine(vm: vm)).contains("noapictimer"))
        #expect(!words(commandLine(accelerator: .kvm, vm: vm)).contains("noapictimer"))
        vm.vcpus = 2
        #expect(!words(commandLine(vm: vm)).contains("noapictimer"))
    }

    @Test func tcgOnlyArgumentsAreLeftOutUnderKVM() {
        let append = value(after: "-append", in: commandLine(accelerator: .kvm).arguments).first ?? ""
        #expect(!append.contains("mitigations=off"))
        #expect(!append.contains("tsc_early_khz"))
        #expect(append.contains("init=/sbin/codebench-init"))
    }

    @Test func jailedCommandLineUsesTheJailsPathsAndTheSandbox() {
        var line = commandLine()
        line.jailed = true
        line.incomingStatePath = "/var/cache/codebench/snapshots/0123/state"
        let arguments = line.arguments
        #expect(value(after: "-sandbox", in: arguments) == ["on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"])
        var cold = line
        cold.incomingStatePath = nil
        #expect(value(after: "-kernel", in: cold.arguments) == [QEMUJail.Path.kernel])
        #expect(value(after: "-drive", in: arguments) == ["id=root,file=\(QEMUJail.Path.rootfs),format=raw,if=none,read-only=on"])
        // No `exec:`: the sandbox forbids spawning; the launcher opened the state as descriptor 3.
        #expect(value(after: "-incoming", in: arguments) == ["fd:3"])
        #expect(!arguments.joined(separator: " ").contains("/img"))
        var network = commandLine(vm: VMConfiguration(image: GuestImage(kernelPath: "/k", rootfsPath: "/r"), network: true))
        network.jailed = true
        // Jailed with network: still no spawning; slirp's host address is the guest's proxy address,
        // and no guestfwd command (the listener is in QEMU's own network namespace).
        #expect(value(after: "-sandbox", in: network.arguments).first?.contains("spawn=deny") == true)
        #expect(value(after: "-netdev", in: network.arguments) == ["user,id=net0,ipv6=off,net=10.0.2.0/24,host=10.0.2.100"])
        var unjailed = commandLine(vm: VMConfiguration(image: GuestImage(kernelPath: "/k", rootfsPath: "/r"), network: true))
        unjailed.egressStateDirectory = "/run/q1"
        #expect(value(after: "-netdev", in: unjailed.arguments).first?.contains("restrict=on") == true)
        #expect(value(after: "-netdev", in: unjailed.arguments).first?.contains("guestfwd=tcp:10.0.2.100:3128-cmd:") == true)
    }

    @Test func jailLauncherGetsEachSettingAsAnArgumentOfItsOwn() {
        let launcher = QEMUJailLauncher(
            jail: QEMUJail(launcherPath: "/opt/cb/codebench-jail"), qemuPath: "/usr/bin/qemu-system-x86_64", rootMountPoint: "/run/q1/r",
            socketDirectory: "/run/q1/j", kernelPath: "/img/vmlinux", rootfsPath: "/img/rootfs.ext4",
            cgroupProcsFiles: ["/sys/fs/cgroup/a/cgroup.procs", "/sys/fs/cgroup/b/cgroup.procs"], uid: 64_001, groups: [993, 994],
            bindKVM: true, fileSizeLimit: 1 << 20)
        #expect(launcher.executable == "/opt/cb/codebench-jail")
        #expect(
            launcher.arguments(qemuArguments: ["-M", "microvm"]) == [
                "/run/q1/r", "/run/q1/j", "/img/vmlinux", "/img/rootfs.ext4", "-", "-",
                "/sys/fs/cgroup/a/cgroup.procs:/sys/fs/cgroup/b/cgroup.procs", "64001", "64000", "993,994", "1048576", "256", "kvm",
                "--", "/usr/bin/qemu-system-x86_64", "-M", "microvm",
            ])
        // A restore has no kernel; a streamed one names its state file.
        var restore = launcher
        restore.kernelPath = nil
        restore.incomingStatePath = "/snap/state"
        restore.groups = []
        restore.cgroupProcsFiles = []
        restore.bindKVM = false
        #expect(
            Array(restore.arguments(qemuArguments: []).prefix(13)) == [
                "/run/q1/r", "/run/q1/j", "-", "/img/rootfs.ext4", "/snap/state", "-", "-", "64001", "64000", "-", "1048576", "256", "-",
            ])
        // By default the launcher is the one built beside this executable.
        #expect(QEMUJail().resolvedLauncherPath.hasSuffix("/codebench-jail"))
    }

    @Test func acceleratorOptions() {
        var configuration = QEMUDriver.Configuration()
        configuration.tcgTranslationCacheMiB = 64
        #expect(value(after: "-accel", in: commandLine(configuration: configuration).arguments) == ["tcg,tb-size=64"])
        #expect(value(after: "-accel", in: commandLine(accelerator: .kvm, configuration: configuration).arguments) == ["kvm"])
    }

    @Test func readsTheTSCRateFromCpuinfo() {
        #expect(HostTSC.cpuinfoKHz("processor\t: 0\ncpu MHz\t\t: 2596.138\nflags\t: fpu\n") == 2_596_138)
        #expect(HostTSC.cpuinfoKHz("processor\t: 0\n") == nil)
    }
}

extension QEMUCommandLineTests {
    @Test func copyOnWriteMapsTheTemplateFileSharedAndEachRestoredVMPrivately() {
        var template = commandLine()
        template.memoryFile = .init(path: QEMUTemplateMemory.memoryPath, shared: true)
        template.qmpSocketPath = "/run/cb/q1/qmp.sock"
        #expect(value(after: "-M", in: template.arguments) == ["microvm,acpi=off,memory-backend=mem"])
        #expect(value(after: "-object", in: template.arguments) == ["memory-backend-file,id=mem,size=192M,mem-path=/proc/self/fd/3,share=on"])
        // A comma in a path is doubled.
        template.memoryFile = .init(path: "/snap/a,b", shared: true)
        #expect(value(after: "-object", in: template.arguments) == ["memory-backend-file,id=mem,size=192M,mem-path=/snap/a,,b,share=on"])
        #expect(!template.arguments.contains("-incoming"))

        var restored = commandLine()
        restored.memoryFile = .init(path: QEMUTemplateMemory.memoryPath, shared: false)
        restored.incomingDeferred = true
        #expect(value(after: "-object", in: restored.arguments) == ["memory-backend-file,id=mem,size=192M,mem-path=/proc/self/fd/3,share=off"])
        #expect(value(after: "-incoming", in: restored.arguments) == ["defer"])
        // Jailed too: the memfd and the state are descriptors, never paths of the host.
        restored.jailed = true
        #expect(value(after: "-object", in: restored.arguments) == ["memory-backend-file,id=mem,size=192M,mem-path=/proc/self/fd/3,share=off"])
        #expect(value(after: "-incoming", in: restored.arguments) == ["defer"])
        // Never `readonly=on`: QEMU 7.2 then makes guest RAM a ROM.
        #expect(!restored.arguments.contains { $0.contains("readonly") })
    }

    @Test func copyOnWriteSnapshotsHaveTheirOwnKeyJailedOrNot() throws {
        let vm = try VMTest.configuration()
        let streamed = QEMUDriver.Configuration(snapshotDirectory: "/snap")
        var copyOnWrite = streamed
        copyOnWrite.restoreMode = .copyOnWrite
        #expect(copyOnWrite.effectiveRestoreMode == .copyOnWrite)
        let keys = try [streamed, copyOnWrite].map { try QEMUDriver(configuration: $0).snapshotKey(for: vm) }
        #expect(keys[0].name != keys[1].name, "a streamed snapshot is never loaded as a copy-on-write one")
        #expect(keys[1].text.contains("memory-backend-file"))
        var jailedStreamed = streamed
        jailedStreamed.jail = QEMUJail()
        copyOnWrite.jail = QEMUJail()
        #expect(copyOnWrite.effectiveRestoreMode == .copyOnWrite, "jailed, copy-on-write is restored copy-on-write")
        let jailedKeys = try [jailedStreamed, copyOnWrite].map { try QEMUDriver(configuration: $0).snapshotKey(for: vm) }
        #expect(Set((keys + jailedKeys).map(\.name)).count == 4, "each mode, jailed and not, has its own snapshot")
        #expect(jailedKeys[1].text.contains("memory-backend-file"))
    }

    /// The jail's proc: pid-only in the jail's own PID namespace, and left mounted for QEMU only
    /// when it must reopen a memfd.
    @Test func theJailKeepsAPidOnlyProcOnlyForCopyOnWrite() {
        var launcher = QEMUJailLauncher(
            jail: QEMUJail(), qemuPath: "/usr/bin/qemu-system-x86_64", rootMountPoint: "/run/q1/r", socketDirectory: "/run/q1/j",
            kernelPath: "/img/vmlinux", rootfsPath: "/img/rootfs.ext4", uid: 64_001, bindKVM: false, fileSizeLimit: 1 << 20)
        #expect(!launcher.arguments(qemuArguments: []).contains("proc"))
        launcher.keepsProc = true
        #expect(launcher.arguments(qemuArguments: []).contains("proc"))
    }
}
