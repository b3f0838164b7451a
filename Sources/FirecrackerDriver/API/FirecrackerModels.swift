// Request and response bodies of the Firecracker API (v1.16.1), named after the spec's `definitions`.
// Only the fields the driver uses are modelled; optional fields are omitted from the JSON when nil,
// because Firecracker applies its own defaults for absent fields and rejects unknown ones.

/// `MachineConfiguration`: vCPUs and memory. Pre-boot only.
public struct MachineConfiguration: Codable, Sendable, Equatable {
    public var vcpuCount: Int
    public var memSizeMib: Int
    public var smt: Bool?
    public var trackDirtyPages: Bool?

    public init(vcpuCount: Int, memSizeMib: Int, smt: Bool? = false, trackDirtyPages: Bool? = nil) {
        self.vcpuCount = vcpuCount
        self.memSizeMib = memSizeMib
        self.smt = smt
        self.trackDirtyPages = trackDirtyPages
    }

    enum CodingKeys: String, CodingKey {
        case vcpuCount = "vcpu_count"
        case memSizeMib = "mem_size_mib"
        case smt
        case trackDirtyPages = "track_dirty_pages"
    }
}

/// `BootSource`: the kernel and its command line. Pre-boot only.
public struct BootSource: Codable, Sendable, Equatable {
    public var kernelImagePath: String
    public var bootArgs: String?

    public init(kernelImagePath: String, bootArgs: String? = nil) {
        self.kernelImagePath = kernelImagePath
        self.bootArgs = bootArgs
    }

    enum CodingKeys: String, CodingKey {
        case kernelImagePath = "kernel_image_path"
        case bootArgs = "boot_args"
    }
}

/// `Drive`: a virtio-block device backed by a host file. Pre-boot only.
public struct Drive: Codable, Sendable, Equatable {
    public var driveId: String
    public var pathOnHost: String
    public var isRootDevice: Bool
    public var isReadOnly: Bool

    public init(driveId: String, pathOnHost: String, isRootDevice: Bool, isReadOnly: Bool) {
        self.driveId = driveId
        self.pathOnHost = pathOnHost
        self.isRootDevice = isRootDevice
        self.isReadOnly = isReadOnly
    }

    enum CodingKeys: String, CodingKey {
        case driveId = "drive_id"
        case pathOnHost = "path_on_host"
        case isRootDevice = "is_root_device"
        case isReadOnly = "is_read_only"
    }
}

/// `Vsock`: the guest's virtio-vsock device; the host side is the Unix socket at `uds_path`.
public struct Vsock: Codable, Sendable, Equatable {
    /// 0-2 are reserved by the vsock address family; 3 is the first guest CID.
    public var guestCid: Int
    public var udsPath: String

    public init(guestCid: Int = 3, udsPath: String) {
        self.guestCid = guestCid
        self.udsPath = udsPath
    }

    enum CodingKeys: String, CodingKey {
        case guestCid = "guest_cid"
        case udsPath = "uds_path"
    }
}

/// `Logger`: where Firecracker writes its own human-readable log.
public struct FirecrackerLogger: Codable, Sendable, Equatable {
    /// The spec's `Logger.level` enum.
    public enum Level: String, Codable, Sendable, CaseIterable {
        case error = "Error", warning = "Warning", info = "Info", debug = "Debug", trace = "Trace", off = "Off"
    }

    public var logPath: String
    public var level: Level?
    public var showLevel: Bool?
    public var showLogOrigin: Bool?

    public init(logPath: String, level: Level? = .warning, showLevel: Bool? = true, showLogOrigin: Bool? = false) {
        self.logPath = logPath
        self.level = level
        self.showLevel = showLevel
        self.showLogOrigin = showLogOrigin
    }

    enum CodingKeys: String, CodingKey {
        case logPath = "log_path"
        case level
        case showLevel = "show_level"
        case showLogOrigin = "show_log_origin"
    }
}

/// `Metrics`: where Firecracker flushes its JSON metrics.
public struct Metrics: Codable, Sendable, Equatable {
    public var metricsPath: String

    public init(metricsPath: String) { self.metricsPath = metricsPath }

    enum CodingKeys: String, CodingKey { case metricsPath = "metrics_path" }
}

/// `EntropyDevice`: a virtio-rng device, so the guest's CRNG is ready at once (the agent's Swift
/// runtime blocks in `getrandom` until it is). No rate limiter: one job per VM.
public struct EntropyDevice: Codable, Sendable, Equatable {
    public init() {}
}

/// `InstanceActionInfo`: a synchronous action.
public struct InstanceActionInfo: Codable, Sendable, Equatable {
    public enum ActionType: String, Codable, Sendable {
        case flushMetrics = "FlushMetrics"
        case instanceStart = "InstanceStart"
        case sendCtrlAltDel = "SendCtrlAltDel"
    }

    public var actionType: ActionType

    public init(actionType: ActionType) { self.actionType = actionType }

    enum CodingKeys: String, CodingKey { case actionType = "action_type" }
}

/// `Vm`: the running state, set with `PATCH /vm`.
public struct VmState: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case paused = "Paused"
        case resumed = "Resumed"
    }

    public var state: State

    public init(state: State) { self.state = state }
}

/// `SnapshotCreateParams`: writes the VM state and its memory to two files. The VM must be paused.
public struct SnapshotCreateParams: Codable, Sendable, Equatable {
    public enum SnapshotType: String, Codable, Sendable {
        case full = "Full"
        case diff = "Diff"
    }

    public var snapshotType: SnapshotType?
    public var snapshotPath: String
    public var memFilePath: String

    public init(snapshotType: SnapshotType? = .full, snapshotPath: String, memFilePath: String) {
        self.snapshotType = snapshotType
        self.snapshotPath = snapshotPath
        self.memFilePath = memFilePath
    }

    enum CodingKeys: String, CodingKey {
        case snapshotType = "snapshot_type"
        case snapshotPath = "snapshot_path"
        case memFilePath = "mem_file_path"
    }
}

/// `MemoryBackend`: how a loaded snapshot gets its guest memory.
public struct MemoryBackend: Codable, Sendable, Equatable {
    public enum BackendType: String, Codable, Sendable {
        case file = "File"
        case uffd = "Uffd"
    }

    public var backendType: BackendType
    public var backendPath: String

    public init(backendType: BackendType = .file, backendPath: String) {
        self.backendType = backendType
        self.backendPath = backendPath
    }

    enum CodingKeys: String, CodingKey {
        case backendType = "backend_type"
        case backendPath = "backend_path"
    }
}

/// `VsockOverride`: where a restored VM's vsock device listens instead of the path saved in the snapshot.
public struct VsockOverride: Codable, Sendable, Equatable {
    public var udsPath: String

    public init(udsPath: String) { self.udsPath = udsPath }

    enum CodingKeys: String, CodingKey { case udsPath = "uds_path" }
}

/// `SnapshotLoadParams`: only accepted by a fresh Firecracker process (after logger/metrics at most).
public struct SnapshotLoadParams: Codable, Sendable, Equatable {
    public var snapshotPath: String
    public var memBackend: MemoryBackend
    public var trackDirtyPages: Bool?
    public var resumeVm: Bool?
    /// Without it the restored vsock binds the path the template used, which every restore would share.
    public var vsockOverride: VsockOverride?
    /// x86_64 only: advance kvmclock by the wall-clock time since the snapshot (default false).
    public var clockRealtime: Bool?

    public init(
        snapshotPath: String, memBackend: MemoryBackend, trackDirtyPages: Bool? = false, resumeVm: Bool? = true,
        vsockOverride: VsockOverride? = nil, clockRealtime: Bool? = nil
    ) {
        self.snapshotPath = snapshotPath
        self.memBackend = memBackend
        self.trackDirtyPages = trackDirtyPages
        self.resumeVm = resumeVm
        self.vsockOverride = vsockOverride
        self.clockRealtime = clockRealtime
    }

    enum CodingKeys: String, CodingKey {
        case snapshotPath = "snapshot_path"
        case memBackend = "mem_backend"
        case trackDirtyPages = "track_dirty_pages"
        case resumeVm = "resume_vm"
        case vsockOverride = "vsock_override"
        case clockRealtime = "clock_realtime"
    }
}

/// `InstanceInfo`: the answer to `GET /`.
public struct InstanceInfo: Codable, Sendable, Equatable {
    public var appName: String
    public var id: String
    /// `Not started`, `Running` or `Paused`.
    public var state: String
    public var vmmVersion: String

    public init(appName: String, id: String, state: String, vmmVersion: String) {
        self.appName = appName
        self.id = id
        self.state = state
        self.vmmVersion = vmmVersion
    }

    enum CodingKeys: String, CodingKey {
        case appName = "app_name"
        case id, state
        case vmmVersion = "vmm_version"
    }
}

/// `FirecrackerVersion`: the answer to `GET /version`.
public struct FirecrackerVersion: Codable, Sendable, Equatable {
    public var firecrackerVersion: String

    public init(firecrackerVersion: String) { self.firecrackerVersion = firecrackerVersion }

    enum CodingKeys: String, CodingKey { case firecrackerVersion = "firecracker_version" }
}

/// `Error`: the body Firecracker sends with every 4xx/5xx.
public struct FirecrackerFault: Codable, Sendable, Equatable {
    public var faultMessage: String?

    enum CodingKeys: String, CodingKey { case faultMessage = "fault_message" }
}
