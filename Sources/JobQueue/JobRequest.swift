import AgentProtocol

/// A validated job, as the platform submitted it.
///
/// Limits are what the job *asked for*: every field is optional and the Worker clamps them to the
/// operator's maximums. The parser only guarantees they are positive integers.
public struct JobRequest: Sendable, Equatable {
    /// Limits requested by the job (`limits` object of the job JSON).
    public struct RequestedLimits: Sendable, Equatable {
        /// `wall_time_ms`.
        public var wallTimeMilliseconds: Int?
        /// From `memory_bytes`, or `memory_mb` converted to bytes.
        public var memoryBytes: Int?
        /// `processes`: the most processes (pids) the job may have at once.
        public var processes: Int?
        /// `output_bytes`: bytes kept per output stream.
        public var outputBytes: Int?

        public init(wallTimeMilliseconds: Int? = nil, memoryBytes: Int? = nil, processes: Int? = nil, outputBytes: Int? = nil) {
            self.wallTimeMilliseconds = wallTimeMilliseconds
            self.memoryBytes = memoryBytes
            self.processes = processes
            self.outputBytes = outputBytes
        }
    }

    /// The job id; also names the status list (`<statusKeyPrefix><id>`).
    public var id: String
    /// `command` (a shell command line) or `language` + `code`.
    public var workload: Workload
    /// Bytes fed to the program's standard input (empty when the job gave none).
    public var stdin: [UInt8]
    /// `timeout_ms`: the job's overall time budget, when given.
    public var timeoutMilliseconds: Int?
    public var limits: RequestedLimits
    /// Whether the job asks for network access; the Worker refuses it unless the operator allows it.
    public var network: Bool

    public init(
        id: String, workload: Workload, stdin: [UInt8] = [], timeoutMilliseconds: Int? = nil,
        limits: RequestedLimits = RequestedLimits(), network: Bool = false
    ) {
        self.id = id
        self.workload = workload
        self.stdin = stdin
        self.timeoutMilliseconds = timeoutMilliseconds
        self.limits = limits
        self.network = network
    }
}
