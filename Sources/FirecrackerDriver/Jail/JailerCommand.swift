/// The `jailer` command line for one VM, as documented in Firecracker's `docs/jailer.md`:
/// `jailer --id <id> --exec-file <firecracker> --uid <uid> --gid <gid> [--cgroup-version 2]
/// [--cgroup <file>=<value>]... [--chroot-base-dir <dir>] [--netns <path>]
/// [--resource-limit <resource>=<value>]... [--new-pid-ns] -- <firecracker arguments>`.
///
/// Never `--daemonize`: the jailer's `setsid()` fails for a process-group leader (we spawn it as one,
/// so one signal reaches the whole VM), and we want its stderr for diagnostics.
public struct JailerCommand: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]

    /// - Parameters:
    ///   - firecrackerPath: `--exec-file`; its file name must contain `firecracker` (the jailer checks).
    ///   - apiSocketInJail: the API socket as Firecracker sees it (inside the chroot).
    public init(
        id: String, uid: UInt32, firecrackerPath: String, configuration: JailerConfiguration,
        vcpus: Int, memoryMiB: Int, apiSocketInJail: String
    ) {
        executable = configuration.jailerPath
        var arguments = [
            "--id", id,
            "--exec-file", firecrackerPath,
            "--uid", String(uid),
            "--gid", String(configuration.gid),
            "--chroot-base-dir", configuration.chrootBaseDirectory,
            "--cgroup-version", "2",
            "--cgroup", "memory.max=\((memoryMiB + configuration.memoryOverheadMiB) << 20)",
            "--cgroup", "cpu.max=\(configuration.cpuQuotaMicrosecondsPerVCPU * vcpus) \(configuration.cpuPeriodMicroseconds)",
            "--resource-limit", "fsize=\(configuration.maximumFileSizeBytes)",
            "--resource-limit", "no-file=\(configuration.maximumOpenFiles)",
        ]
        if let namespace = configuration.networkNamespace {
            arguments += ["--netns", namespace.hasPrefix("/") ? namespace : "/var/run/netns/\(namespace)"]
        }
        if configuration.newPIDNamespace {
            arguments.append("--new-pid-ns")
        }
        // The jailer passes `--id` itself; everything after `--` goes to Firecracker.
        arguments += ["--", "--api-sock", apiSocketInJail]
        self.arguments = arguments
    }
}
