extension FirecrackerDriver {
    /// Everything about how VMs are run that is not per-VM shape (that is ``MicroVM/VMConfiguration``).
    public struct Configuration: Sendable, Hashable {
        /// The kernel command line without the console part (see ``serialConsole``).
        public static let defaultBootArguments =
            "reboot=k panic=1 pci=off root=/dev/vda ro init=/sbin/codebench-init random.trust_cpu=on quiet"
        /// Loads what most jobs start with (the shell, the Python interpreter), as QEMU's template does.
        public static let defaultSnapshotWarmup = "true && python3 -c pass"

        /// `firecracker`, looked up on `PATH`, or an absolute path.
        public var firecrackerPath: String
        /// Run under the jailer (production); nil runs Firecracker directly as the current user.
        public var jailer: JailerConfiguration?
        /// Bound on each API call (connect, send, complete reply).
        public var apiRequestTimeout: Duration
        /// How long the API socket may take to appear after the process starts.
        public var apiSocketTimeout: Duration
        public var bootArguments: String
        /// Guest kernel messages on ttyS0 into the console ring. Off in production (Firecracker's
        /// production guide: a guest can flood the serial console), which adds `8250.nr_uarts=0`.
        public var serialConsole: Bool
        public var logLevel: FirecrackerLogger.Level
        /// Firecracker's own log is kept in a ring of this many bytes.
        public var logBufferBytes: Int
        /// The guest agent's AF_VSOCK port.
        public var agentVsockPort: UInt32
        public var guestCID: Int
        /// A virtio-rng device, so the guest's CRNG is ready at once.
        public var entropyDevice: Bool
        /// Where saved VM states live. When set, VMs start by loading a Firecracker snapshot of a
        /// freshly booted, idle guest (made on first use, keyed by Firecracker, image and machine)
        /// instead of booting the kernel; nil (the default) boots every VM cold. See docs/snapshots.md.
        public var snapshotDirectory: String?
        /// Bound of the template's warm-up command.
        public var snapshotSaveTimeout: Duration
        /// A fixed command of ours the template VM runs before it is saved, so the files every job
        /// needs are already in the restored guest's page cache. Never a job's code. nil saves the
        /// guest as it booted.
        public var snapshotWarmup: String?

        public init(
            firecrackerPath: String = "firecracker",
            jailer: JailerConfiguration? = nil,
            apiRequestTimeout: Duration = .seconds(5),
            apiSocketTimeout: Duration = .seconds(5),
            bootArguments: String = Configuration.defaultBootArguments,
            serialConsole: Bool = true,
            logLevel: FirecrackerLogger.Level = .warning,
            logBufferBytes: Int = 64 << 10,
            agentVsockPort: UInt32 = 1024,
            guestCID: Int = 3,
            entropyDevice: Bool = true,
            snapshotDirectory: String? = nil,
            snapshotSaveTimeout: Duration = .seconds(60),
            snapshotWarmup: String? = Configuration.defaultSnapshotWarmup
        ) {
            self.firecrackerPath = firecrackerPath
            self.jailer = jailer
            self.apiRequestTimeout = apiRequestTimeout
            self.apiSocketTimeout = apiSocketTimeout
            self.bootArguments = bootArguments
            self.serialConsole = serialConsole
            self.logLevel = logLevel
            self.logBufferBytes = logBufferBytes
            self.agentVsockPort = agentVsockPort
            self.guestCID = guestCID
            self.entropyDevice = entropyDevice
            self.snapshotDirectory = snapshotDirectory
            self.snapshotSaveTimeout = snapshotSaveTimeout
            self.snapshotWarmup = snapshotWarmup
        }

        /// The command line the guest boots with.
        public var effectiveBootArguments: String {
            (serialConsole ? "console=ttyS0 " : "8250.nr_uarts=0 ") + bootArguments
        }
    }
}
