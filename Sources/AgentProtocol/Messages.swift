import FoundationEssentials

/// The version of the host <-> agent protocol spoken by this build. Bumped on any incompatible change;
/// the agent announces it in ``AgentHello`` and refuses requests for another version.
public let agentProtocolVersion: UInt8 = 1

/// Additive revisions within ``agentProtocolVersion``, announced in ``AgentHello/revision``: 2 added judge
/// mode (``RunRequest/files``, ``RunRequest/judge``, CPU, file-size and compile limits); 3 added streamed
/// output (``RunRequest/streamOutput`` and ``AgentMessage/output(_:)``, see ``outputStreamingRevision``);
/// 4 added ``RunRequest/tracePhases`` and ``RunRequest/prepareNextRequest`` (an older agent leaves
/// ``RunResult/phases`` out and prepares nothing, which harms nothing); 5 added ``AgentResume/tracePhases``
/// and ``AgentHello/phases`` (an older agent answers a traced resume without them); 6 added
/// ``RunRequest/nextRequestLimits`` (an older agent prepares for the protocol's default limits); 7 added
/// ``RunRequest/preparedRequests`` (an older agent prepares only the next request).
/// An agent of an older revision ignores the fields it does not know, so a host must not send those to it.
public let agentProtocolRevision = 8

/// A language by its canonical name in the guest image's registry (guest/languages.json). A name, not an
/// enum: the image decides which languages exist, and the wire stays `"python"` as before.
public struct Language: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(_ name: String) {
        self.rawValue = name
    }

    public static let python = Language("python")
    public static let c = Language("c")
    public static let cpp = Language("cpp")
    public static let bash = Language("bash")

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What to run: a shell command line, or a program given as source in a language.
public enum Workload: Codable, Sendable, Equatable {
    case shell(command: String)
    case program(language: Language, source: String)
    /// A program whose sources all came in ``RunRequest/files``; `entry` names the one to run (revision 2).
    case project(language: Language, entry: String)
}

/// Hard limits the agent enforces inside the guest. The host enforces its own, looser, bounds too
/// (the guest is never trusted to stop itself).
public struct ResourceLimits: Codable, Sendable, Hashable {
    /// Wall-clock time for the run (compile time for compiled languages is bounded separately by the same value).
    public var wallTimeMilliseconds: Int
    /// cgroup v2 `memory.max` for the job.
    public var memoryBytes: Int
    /// cgroup v2 `pids.max` for the job.
    public var maxProcesses: Int
    /// Bytes kept per stream (stdout, stderr); the rest is discarded and the result says it was truncated.
    public var maxOutputBytesPerStream: Int
    /// CPU time of the step's cgroup (all its processes); past it the step is killed (`cpu_time_limit`). Nil: none.
    public var cpuTimeMilliseconds: Int?
    /// Largest file a program may write (RLIMIT_FSIZE); a bigger write gets SIGXFSZ. Nil: none.
    public var maxFileSizeBytes: Int?
    /// Wall time of the compile step; nil compiles under ``wallTimeMilliseconds``, as before revision 2.
    public var compileWallTimeMilliseconds: Int?
    /// Memory of the compile step (never below the agent's compile floor); nil uses ``memoryBytes``.
    public var compileMemoryBytes: Int?

    public init(
        wallTimeMilliseconds: Int = 10_000,
        memoryBytes: Int = 256 << 20,
        maxProcesses: Int = 64,
        maxOutputBytesPerStream: Int = 1 << 20,
        cpuTimeMilliseconds: Int? = nil,
        maxFileSizeBytes: Int? = nil,
        compileWallTimeMilliseconds: Int? = nil,
        compileMemoryBytes: Int? = nil
    ) {
        self.wallTimeMilliseconds = wallTimeMilliseconds
        self.memoryBytes = memoryBytes
        self.maxProcesses = maxProcesses
        self.maxOutputBytesPerStream = maxOutputBytesPerStream
        self.cpuTimeMilliseconds = cpuTimeMilliseconds
        self.maxFileSizeBytes = maxFileSizeBytes
        self.compileWallTimeMilliseconds = compileWallTimeMilliseconds
        self.compileMemoryBytes = compileMemoryBytes
    }
}

/// A request to run one workload. One request per VM in the product, but the agent serves several in a row.
public struct RunRequest: Codable, Sendable, Equatable {
    /// Correlates the reply; the job id in the worker.
    public var id: String
    public var workload: Workload
    public var stdin: Data
    public var limits: ResourceLimits
    /// Files written into the working directory before compile and run (revision 2).
    public var files: [WorkFile]
    /// Command-line arguments of the program (not of a shell workload's command).
    public var arguments: [String]
    /// Added to the compile command after the language's own flags; the host checked them against its allow-list.
    public var compilerOptions: [String]
    /// Test cases and how to judge them; nil runs the workload once, as before revision 2.
    public var judge: JudgeSpec?
    /// Send the run step's output as ``OutputChunk`` messages while it runs (revision 3). The result is
    /// unchanged: it still carries all the output.
    public var streamOutput = false
    /// Return ``RunResult/phases``: where the agent's time went (revision 4; for benchmarks).
    public var tracePhases = false
    /// Before answering, finish this request's clean-up and make the next request's work directory and
    /// cgroup (revision 4). Set on a snapshot template's warm-up, so that every VM restored from the
    /// snapshot finds them made, and on a warm VM's priming; an older agent ignores it.
    public var prepareNextRequest = false
    /// With ``prepareNextRequest``: the limits the next request is expected to have, whose memory
    /// and process limits the prepared work directory and cgroup are made with (revision 6). nil
    /// prepares for ``ResourceLimits``' defaults; a request with other limits costs a remount and
    /// the cgroup writes that differ.
    public var nextRequestLimits: ResourceLimits?
    /// With ``prepareNextRequest``: how many of the next requests to prepare, each with its own work
    /// directory, cgroup and shell (revision 7; nil: one, at most ``maximumPreparedRequests``). The
    /// snapshot's template of a worker with warm VMs prepares two: the first serves a restored VM's
    /// job, or a warm VM's priming, and the second the job of a primed VM, which then spawns nothing.
    public var preparedRequests: Int?
    /// The most requests one request may have prepared: each holds a shell, a tmpfs and a cgroup.
    public static let maximumPreparedRequests = 2
    /// With ``prepareNextRequest``: also start the fork server of every language of the image that has
    /// one, and keep it for the requests to come (revision 8). A later program in that language, a
    /// single run as well as a judge's cases, is then forked from it instead of spawned. Set on a
    /// snapshot's template: every restored VM's Python job skips the interpreter's start-up, which
    /// under TCG is most of such a job's host CPU (docs/snapshots.md, "Warm interpreters").
    public var prepareForkServers = false

    public init(
        id: String, workload: Workload, stdin: Data = Data(), limits: ResourceLimits = ResourceLimits(),
        files: [WorkFile] = [], arguments: [String] = [], compilerOptions: [String] = [], judge: JudgeSpec? = nil
    ) {
        self.id = id
        self.workload = workload
        self.stdin = stdin
        self.limits = limits
        self.files = files
        self.arguments = arguments
        self.compilerOptions = compilerOptions
        self.judge = judge
    }

    private enum CodingKeys: String, CodingKey {
        case id, workload, stdin, limits, files, arguments, compilerOptions, judge, streamOutput, tracePhases
        case prepareNextRequest, nextRequestLimits, preparedRequests, prepareForkServers
    }

    /// Revision 1 requests have none of the judge fields: they decode as empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        workload = try container.decode(Workload.self, forKey: .workload)
        stdin = try container.decode(Data.self, forKey: .stdin)
        limits = try container.decode(ResourceLimits.self, forKey: .limits)
        files = try container.decodeIfPresent([WorkFile].self, forKey: .files) ?? []
        arguments = try container.decodeIfPresent([String].self, forKey: .arguments) ?? []
        compilerOptions = try container.decodeIfPresent([String].self, forKey: .compilerOptions) ?? []
        judge = try container.decodeIfPresent(JudgeSpec.self, forKey: .judge)
        streamOutput = try container.decodeIfPresent(Bool.self, forKey: .streamOutput) ?? false
        tracePhases = try container.decodeIfPresent(Bool.self, forKey: .tracePhases) ?? false
        prepareNextRequest = try container.decodeIfPresent(Bool.self, forKey: .prepareNextRequest) ?? false
        nextRequestLimits = try container.decodeIfPresent(ResourceLimits.self, forKey: .nextRequestLimits)
        preparedRequests = try container.decodeIfPresent(Int.self, forKey: .preparedRequests)
        prepareForkServers = try container.decodeIfPresent(Bool.self, forKey: .prepareForkServers) ?? false
    }

    /// Empty judge fields are left out, so a revision 1 request encodes exactly as before.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(workload, forKey: .workload)
        try container.encode(stdin, forKey: .stdin)
        try container.encode(limits, forKey: .limits)
        if !files.isEmpty { try container.encode(files, forKey: .files) }
        if !arguments.isEmpty { try container.encode(arguments, forKey: .arguments) }
        if !compilerOptions.isEmpty { try container.encode(compilerOptions, forKey: .compilerOptions) }
        try container.encodeIfPresent(judge, forKey: .judge)
        if streamOutput { try container.encode(true, forKey: .streamOutput) }
        if tracePhases { try container.encode(true, forKey: .tracePhases) }
        if prepareNextRequest { try container.encode(true, forKey: .prepareNextRequest) }
        try container.encodeIfPresent(nextRequestLimits, forKey: .nextRequestLimits)
        try container.encodeIfPresent(preparedRequests, forKey: .preparedRequests)
        if prepareForkServers { try container.encode(true, forKey: .prepareForkServers) }
    }
}

/// How a run ended, from the user's point of view.
public enum Verdict: String, Codable, Sendable, Equatable {
    case ok
    case runtimeError = "runtime_error"
    case timeLimit = "time_limit"
    case memoryLimit = "memory_limit"
    case outputLimit = "output_limit"
    case compileError = "compile_error"
    case internalError = "internal_error"
    /// The step used more CPU time than ``ResourceLimits/cpuTimeMilliseconds`` (revision 2).
    case cpuTimeLimit = "cpu_time_limit"
    /// Judge mode: the case's output passed the comparison or the checker.
    case accepted
    /// Judge mode: the program ran cleanly but its output did not pass.
    case wrongAnswer = "wrong_answer"
    /// Judge mode: not run, because an earlier case failed and the job stops on failure.
    case skipped
}

/// The outcome of a ``RunRequest``.
public struct RunResult: Codable, Sendable, Equatable {
    public var id: String
    public var verdict: Verdict
    /// Exit status when the program exited; nil when it was killed by a signal.
    public var exitCode: Int32?
    /// The terminating signal, when there was one.
    public var signal: Int32?
    public var stdout: Data
    public var stderr: Data
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var wallTimeMilliseconds: Int
    public var cpuTimeMilliseconds: Int
    public var peakMemoryBytes: Int
    /// Compiler diagnostics for compiled languages (bounded like stdout).
    public var compileOutput: Data?
    /// A sentence for a person, set for every verdict but `ok` (e.g. "time limit of 2 s exceeded").
    public var message: String?
    /// Judge mode: one result per case, in the request's order; nil outside judge mode.
    public var tests: [TestResult]?
    /// Where the agent's time went, in order, when the request asked (``RunRequest/tracePhases``).
    public var phases: [AgentPhase]?

    public init(
        id: String, verdict: Verdict, exitCode: Int32?, signal: Int32?, stdout: Data, stderr: Data,
        stdoutTruncated: Bool, stderrTruncated: Bool, wallTimeMilliseconds: Int, cpuTimeMilliseconds: Int,
        peakMemoryBytes: Int, compileOutput: Data? = nil, message: String? = nil, tests: [TestResult]? = nil
    ) {
        self.tests = tests
        self.id = id
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.wallTimeMilliseconds = wallTimeMilliseconds
        self.cpuTimeMilliseconds = cpuTimeMilliseconds
        self.peakMemoryBytes = peakMemoryBytes
        self.compileOutput = compileOutput
        self.message = message
    }
}

/// One stretch of the agent's work on a request: `name` ended `microseconds` after the previous one
/// (the first after the request's frame was read). Names are the agent's, for people (docs/agent-protocol.md).
public struct AgentPhase: Codable, Sendable, Equatable {
    public var name: String
    public var microseconds: Int

    public init(name: String, microseconds: Int) {
        self.name = name
        self.microseconds = microseconds
    }
}

/// Sent by the agent, unprompted, as soon as its channel is open: the host waits for it before sending work.
/// Also the answer to ``AgentResume``, then carrying its nonce.
public struct AgentHello: Codable, Sendable, Equatable {
    public var protocolVersion: UInt8
    public var agentVersion: String
    public var kernel: String
    /// The ``AgentResume/nonce`` this hello answers; nil for the unsolicited hello of a new connection.
    public var resumeNonce: String?
    /// ``agentProtocolRevision`` of the agent; nil from agents older than revision 2.
    public var revision: Int?
    /// Where the agent's time went between reading a resume that asked (``AgentResume/tracePhases``)
    /// and this answer to it, in order (revision 5; for benchmarks). Nil otherwise.
    public var phases: [AgentPhase]?

    public init(
        protocolVersion: UInt8 = agentProtocolVersion, agentVersion: String, kernel: String, resumeNonce: String? = nil,
        revision: Int? = agentProtocolRevision
    ) {
        self.revision = revision
        self.protocolVersion = protocolVersion
        self.agentVersion = agentVersion
        self.kernel = kernel
        self.resumeNonce = resumeNonce
    }
}

/// The first message to an agent restored from a snapshot. Every VM restored from one snapshot starts
/// with the same memory: the same kernel random state and a wall clock stopped at the moment of the
/// snapshot. Before any job runs, the agent mixes `entropy` into the kernel's pool and reseeds its
/// CRNG (so two VMs never hand out the same "random" bytes), sets the clock to `unixTimeNanoseconds`,
/// and answers with a ``AgentHello`` carrying `nonce`.
public struct AgentResume: Codable, Sendable, Equatable {
    /// Echoed in the hello, so the host tells the answer apart from an unsolicited hello.
    public var nonce: String
    /// The host's wall clock (CLOCK_REALTIME) when it sent this.
    public var unixTimeNanoseconds: Int64
    /// Fresh random bytes from the host (``minimumEntropyBytes`` to ``maximumEntropyBytes``).
    public var entropy: Data
    /// True asks for ``AgentHello/phases`` in the answer (revision 5; for benchmarks). Nil, left out
    /// of the JSON, is false: the resume encodes as before.
    public var tracePhases: Bool?

    public static let minimumEntropyBytes = 32
    public static let maximumEntropyBytes = 512

    public init(nonce: String, unixTimeNanoseconds: Int64, entropy: Data) {
        self.nonce = nonce
        self.unixTimeNanoseconds = unixTimeNanoseconds
        self.entropy = entropy
    }

    /// A resume with a fresh nonce, 64 bytes from the system's CSPRNG (getrandom) and the current time.
    public static func fresh() -> AgentResume {
        var generator = SystemRandomNumberGenerator()
        let entropy = Data((0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let nonce = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
        return AgentResume(nonce: nonce, unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9), entropy: entropy)
    }
}

/// The agent's answer to a request it could not accept (malformed frame, wrong version, oversized input).
public struct AgentErrorReply: Codable, Sendable, Equatable, Error {
    public enum Code: String, Codable, Sendable {
        case malformedFrame = "malformed_frame"
        case unsupportedVersion = "unsupported_version"
        case tooLarge = "too_large"
        case invalidRequest = "invalid_request"
        case internalError = "internal_error"
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }
}

/// Everything that travels on the channel, in either direction.
public enum AgentMessage: Codable, Sendable, Equatable {
    /// agent -> host, once per connection.
    case hello(AgentHello)
    /// host -> agent.
    case run(RunRequest)
    /// agent -> host, answers `run`.
    case result(RunResult)
    /// agent -> host, answers a frame the agent could not accept.
    case error(AgentErrorReply)
    /// host -> agent: power the guest off (reboot -f; QEMU runs with -no-reboot, so the VM exits).
    case shutdown
    /// host -> agent, first message after a snapshot restore; answered by a `hello` with its nonce.
    case resume(AgentResume)
    /// agent -> host, while a `run` with ``RunRequest/streamOutput`` runs: new output (revision 3).
    case output(OutputChunk)
}
