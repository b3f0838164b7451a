/// A validated job, as the platform submitted it.
///
/// Limits are what the job *asked for*: every field is optional and the Worker clamps them to the
/// operator's maximums. The parser only guarantees they are positive integers.
public struct JobRequest: Sendable, Equatable {
    /// What the job runs, as the wire contract puts it. The Worker turns it into the guest's own
    /// request; the queue knows nothing of the guest.
    public enum Workload: Sendable, Equatable {
        /// `command`: a shell command line (non-empty).
        case shell(command: String)
        /// `language` (or `variant`) + `code`: a program's source.
        case program(language: JobLanguage, source: String)
        /// `language` + `files` without `code`: the program is the files; `entry` (the field, else the
        /// language's ``JobLanguage/defaultEntry``) is the one run.
        case project(language: JobLanguage, entry: String)
    }

    /// Limits requested by the job (`limits` object of the job JSON).
    public struct RequestedLimits: Sendable, Equatable {
        /// `wall_time_ms`.
        public var wallTimeMilliseconds: Int?
        /// From `memory_bytes`, or `memory_mb` converted to bytes.
        public var memoryBytes: Int?
        /// `memory_mb` as sent, when the job gave its memory in MiB (``memoryBytes`` holds the same
        /// limit in bytes): kept so that a refusal names the field the job actually used.
        public var memoryMiB: Int?
        /// `processes`: the most processes (pids) the job may have at once.
        public var processes: Int?
        /// `output_bytes`: bytes kept per output stream.
        public var outputBytes: Int?
        /// `cpu_time_ms`: CPU time of the run (all its processes).
        public var cpuTimeMilliseconds: Int?
        /// `compile_wall_time_ms`.
        public var compileWallTimeMilliseconds: Int?
        /// `compile_memory_mb`.
        public var compileMemoryMiB: Int?
        /// `max_file_size_mb`: the largest file the program may write.
        public var maxFileSizeMiB: Int?

        public init(
            wallTimeMilliseconds: Int? = nil, memoryBytes: Int? = nil, processes: Int? = nil, outputBytes: Int? = nil,
            memoryMiB: Int? = nil, cpuTimeMilliseconds: Int? = nil, compileWallTimeMilliseconds: Int? = nil,
            compileMemoryMiB: Int? = nil, maxFileSizeMiB: Int? = nil
        ) {
            self.cpuTimeMilliseconds = cpuTimeMilliseconds
            self.compileWallTimeMilliseconds = compileWallTimeMilliseconds
            self.compileMemoryMiB = compileMemoryMiB
            self.maxFileSizeMiB = maxFileSizeMiB
            self.wallTimeMilliseconds = wallTimeMilliseconds
            self.memoryBytes = memoryBytes
            self.memoryMiB = memoryMiB
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
    /// `limits`: what the job asked for, before the Worker clamps it.
    public var limits: RequestedLimits
    /// Whether the job asks for network access; the Worker refuses it unless the operator allows it.
    public var network: Bool
    /// `files`: written into the working directory before compile and run.
    public var files: [JobFile]
    /// `args`: the program's command-line arguments.
    public var arguments: [String]
    /// `compiler_options` (a string is split at whitespace); nil when the job gave none. The Worker
    /// decides whether they are allowed.
    public var compilerOptions: [String]?
    /// `tests` and how they are judged; nil runs the program once, as a job always did.
    public var judge: JobJudge?
    /// `stream`: publish stdout and stderr while the job runs (docs/wire-contract.md, "Streamed output").
    public var stream = false

    public init(
        id: String, workload: Workload, stdin: [UInt8] = [], timeoutMilliseconds: Int? = nil,
        limits: RequestedLimits = RequestedLimits(), network: Bool = false, files: [JobFile] = [],
        arguments: [String] = [], compilerOptions: [String]? = nil, judge: JobJudge? = nil
    ) {
        self.files = files
        self.arguments = arguments
        self.compilerOptions = compilerOptions
        self.judge = judge
        self.id = id
        self.workload = workload
        self.stdin = stdin
        self.timeoutMilliseconds = timeoutMilliseconds
        self.limits = limits
        self.network = network
    }
}
