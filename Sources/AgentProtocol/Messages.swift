import FoundationEssentials

/// The version of the host <-> agent protocol spoken by this build. Bumped on any incompatible change;
/// the agent announces it in ``AgentHello`` and refuses requests for another version.
public let agentProtocolVersion: UInt8 = 1

/// Languages the guest image can build and run from source.
public enum Language: String, Codable, Sendable, CaseIterable {
    case python
    case c
    case cpp
    case bash
}

/// What to run: a shell command line, or a program given as source in a language.
public enum Workload: Codable, Sendable, Equatable {
    case shell(command: String)
    case program(language: Language, source: String)
}

/// Hard limits the agent enforces inside the guest. The host enforces its own, looser, bounds too
/// (the guest is never trusted to stop itself).
public struct ResourceLimits: Codable, Sendable, Equatable {
    /// Wall-clock time for the run (compile time for compiled languages is bounded separately by the same value).
    public var wallTimeMilliseconds: Int
    /// cgroup v2 `memory.max` for the job.
    public var memoryBytes: Int
    /// cgroup v2 `pids.max` for the job.
    public var maxProcesses: Int
    /// Bytes kept per stream (stdout, stderr); the rest is discarded and the result says it was truncated.
    public var maxOutputBytesPerStream: Int

    public init(
        wallTimeMilliseconds: Int = 10_000,
        memoryBytes: Int = 256 << 20,
        maxProcesses: Int = 64,
        maxOutputBytesPerStream: Int = 1 << 20
    ) {
        self.wallTimeMilliseconds = wallTimeMilliseconds
        self.memoryBytes = memoryBytes
        self.maxProcesses = maxProcesses
        self.maxOutputBytesPerStream = maxOutputBytesPerStream
    }
}

/// A request to run one workload. One request per VM in the product, but the agent serves several in a row.
public struct RunRequest: Codable, Sendable, Equatable {
    /// Correlates the reply; the job id in the worker.
    public var id: String
    public var workload: Workload
    public var stdin: Data
    public var limits: ResourceLimits

    public init(id: String, workload: Workload, stdin: Data = Data(), limits: ResourceLimits = ResourceLimits()) {
        self.id = id
        self.workload = workload
        self.stdin = stdin
        self.limits = limits
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

    public init(
        id: String, verdict: Verdict, exitCode: Int32?, signal: Int32?, stdout: Data, stderr: Data,
        stdoutTruncated: Bool, stderrTruncated: Bool, wallTimeMilliseconds: Int, cpuTimeMilliseconds: Int,
        peakMemoryBytes: Int, compileOutput: Data? = nil, message: String? = nil
    ) {
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

/// Sent by the agent, unprompted, as soon as its channel is open: the host waits for it before sending work.
/// Also the answer to ``AgentResume``, then carrying its nonce.
public struct AgentHello: Codable, Sendable, Equatable {
    public var protocolVersion: UInt8
    public var agentVersion: String
    public var kernel: String
    /// The ``AgentResume/nonce`` this hello answers; nil for the unsolicited hello of a new connection.
    public var resumeNonce: String?

    public init(protocolVersion: UInt8 = agentProtocolVersion, agentVersion: String, kernel: String, resumeNonce: String? = nil) {
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
}
