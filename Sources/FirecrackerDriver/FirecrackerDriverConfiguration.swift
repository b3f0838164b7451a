extension FirecrackerDriver {
    /// Everything about how VMs are run that is not per-VM shape (that is ``MicroVM/VMConfiguration``).
    public struct Configuration: Sendable, Hashable {
        /// The kernel command line without the console part (see ``serialConsole``).
        public static let defaultBootArguments =
            "reboot=k panic=1 pci=off root=/dev/vda ro init=/sbin/codebench-init random.trust_cpu=on quiet"

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
            entropyDevice: Bool = true
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
        }

        /// The command line the guest boots with.
        public var effectiveBootArguments: String {
            (serialConsole ? "console=ttyS0 " : "8250.nr_uarts=0 ") + bootArguments
        }
    }
}
