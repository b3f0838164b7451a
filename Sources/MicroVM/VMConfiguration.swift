import AgentProtocol
/// The kernel and root filesystem every VM boots from. Built by `scripts/build-guest-image`, cached
/// outside the repository; the root filesystem is attached read-only and shared by all VMs.
public struct GuestImage: Sendable, Hashable {
    /// Uncompressed ELF kernel with a PVH entry point (boots under QEMU microvm and Firecracker).
    public var kernelPath: String
    /// Read-only ext4 root filesystem with the agent as init's child.
    public var rootfsPath: String

    public init(kernelPath: String, rootfsPath: String) {
        self.kernelPath = kernelPath
        self.rootfsPath = rootfsPath
    }

    /// Where the image build puts the current image: `$CODEBENCH_IMAGE_DIR`, else `/var/cache/codebench/image/current`.
    public static var defaultDirectory: String {
        if let dir = getenv("CODEBENCH_IMAGE_DIR").map({ String(cString: $0) }), !dir.isEmpty { return dir }
        return "/var/cache/codebench/image/current"
    }

    /// The image in `directory` (`vmlinux` and `rootfs.ext4`).
    public static func at(_ directory: String = GuestImage.defaultDirectory) -> GuestImage {
        GuestImage(kernelPath: directory + "/vmlinux", rootfsPath: directory + "/rootfs.ext4")
    }

    /// The same files with symlinks resolved, so a VM (and its snapshot) keep one image even if
    /// `image/current` is re-pointed meanwhile. When both files share a directory, that directory is
    /// resolved once, so the kernel and root filesystem surely come from the same image.
    public func resolvingSymlinks() -> GuestImage {
        func resolve(_ path: String) -> String {
            guard let resolved = realpath(path, nil) else { return path }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        func split(_ path: String) -> (directory: String, name: String)? {
            guard let slash = path.lastIndex(of: "/") else { return nil }
            return (String(path[..<slash]), String(path[path.index(after: slash)...]))
        }
        if let kernel = split(kernelPath), let rootfs = split(rootfsPath), kernel.directory == rootfs.directory,
            !kernel.directory.isEmpty
        {
            let directory = resolve(kernel.directory)
            return GuestImage(kernelPath: directory + "/" + kernel.name, rootfsPath: directory + "/" + rootfs.name)
        }
        return GuestImage(kernelPath: resolve(kernelPath), rootfsPath: resolve(rootfsPath))
    }
}

extension VMConfiguration {
    /// This configuration with its image's symlinks resolved (``GuestImage/resolvingSymlinks()``).
    public func resolvingSymlinks() -> VMConfiguration {
        var vm = self
        vm.image = image.resolvingSymlinks()
        return vm
    }
}

/// The shape of one VM. A value with defaults, validated by the driver before it boots.
public struct VMConfiguration: Sendable, Hashable {
    public var image: GuestImage
    public var vcpus: Int
    public var memoryMiB: Int
    /// A network device is attached only when true; the worker sets it only for jobs that ask and
    /// when the operator allows it.
    public var network: Bool
    /// From VMM start to the agent's hello; past it the VM is destroyed and the boot fails.
    public var bootTimeout: Duration
    /// The guest console is kept in a ring of this many bytes for diagnostics (never unbounded).
    public var consoleBufferBytes: Int
    /// Directory for per-VM sockets and files (removed with the VM).
    public var runtimeDirectory: String
    /// The limits most jobs of these VMs run with (a worker's defaults): a snapshot's template and a
    /// warm VM prepare the next job's work directory and cgroup for them
    /// (``RunRequest/nextRequestLimits``), so such a job needs no remount and no cgroup write. nil
    /// prepares for the protocol's defaults. Part of the snapshot's key.
    public var expectedJobLimits: ResourceLimits?
    /// How many of the next jobs a snapshot's template prepares (work directory, cgroup, shell): 1,
    /// or 2 for a worker with warm VMs, whose priming uses the first and whose job the second, so a
    /// primed VM spawns no shell of its own (``RunRequest/preparedRequests``; docs/snapshots.md,
    /// "Warm VMs"). A VM restored for one job kills the spare's shell before its job runs, which
    /// costs that job 10-30 ms under TCG, hence not for every worker. Part of the snapshot's key.
    public var snapshotPreparedJobs: Int = 1
    /// Whether a snapshot's template starts the image's fork servers (``RunRequest/prepareForkServers``),
    /// so that a restored VM's Python program is forked from a started interpreter instead of spawned
    /// (docs/snapshots.md, "Warm interpreters"). Off gives every program a fresh interpreter, its own
    /// hash seed included, at the interpreter's start-up under TCG. Part of the snapshot's key.
    public var snapshotForkServers: Bool = true

    public init(
        image: GuestImage = .at(),
        vcpus: Int = 1,
        memoryMiB: Int = 256,
        network: Bool = false,
        bootTimeout: Duration = .seconds(20),
        consoleBufferBytes: Int = 64 << 10,
        runtimeDirectory: String = "/run/codebench",
        expectedJobLimits: ResourceLimits? = nil
    ) {
        self.expectedJobLimits = expectedJobLimits
        self.image = image
        self.vcpus = vcpus
        self.memoryMiB = memoryMiB
        self.network = network
        self.bootTimeout = bootTimeout
        self.consoleBufferBytes = consoleBufferBytes
        self.runtimeDirectory = runtimeDirectory
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
