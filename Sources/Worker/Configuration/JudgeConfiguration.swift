import AgentProtocol

/// What an operator decides about judge mode (docs/wire-contract.md, "Judge mode"): how many cases a
/// job may have, how much of each case's output the result keeps, whether jobs may pass compiler
/// options and which, and the limits of compiles, CPU time and written files.
public struct JudgeConfiguration: Sendable, Equatable {
    /// Most `tests` one job may have.
    public var maximumTests = 100
    /// stdout and stderr kept per case in the result JSON's `tests`.
    public var caseOutputBytes = 4096
    /// Whether a job's `compiler_options` are honoured at all. Off by default, as in Judge0: a flag can
    /// change what the compiler reads and writes.
    public var allowCompilerOptions = false
    /// Flags a job may pass, by prefix, per language (`-O` allows `-O2`); the operator can add more.
    public var compilerOptionPrefixes: [Language: [String]] = Self.defaultCompilerOptionPrefixes
    /// A job's `cpu_time_ms` is lowered to this.
    public var maximumCPUTimeMilliseconds = 60_000
    /// Compile wall time of a job that does not ask; nil compiles under the run's wall time (as before judge mode).
    public var defaultCompileWallTimeMilliseconds: Int?
    /// A job's `compile_wall_time_ms` is lowered to this.
    public var maximumCompileWallTimeMilliseconds = 60_000
    /// Compile memory of a job that does not ask; nil compiles with the run's memory (the agent never gives a
    /// compile less than 192 MiB).
    public var defaultCompileMemoryBytes: Int?
    /// A job's `compile_memory_mb` is lowered to this.
    public var maximumCompileMemoryBytes = 192 << 20
    /// A job's `max_file_size_mb` is lowered to this.
    public var maximumFileSizeBytes = 64 << 20

    public init() {}

    /// Optimisation, macros, standard, warnings and debug information; nothing that names a file to read
    /// or write (`-o`, `-include`, `@file`, `-fplugin=`, `-B`, `-specs=`).
    public static let defaultCompilerOptionPrefixes: [Language: [String]] = [
        .c: ["-O", "-D", "-U", "-std=", "-W", "-g", "-lm", "-march=native", "-pedantic"],
        .cpp: ["-O", "-D", "-U", "-std=", "-W", "-g", "-lm", "-march=native", "-pedantic"],
    ]

    /// Why these settings cannot be used, or nil (checked with the rest of the configuration).
    var problem: String? {
        if maximumTests < 1 || maximumTests > RequestRules.maximumTests {
            return "max-tests must be between 1 and \(RequestRules.maximumTests)"
        }
        if caseOutputBytes < 0 || caseOutputBytes > RequestRules.maximumCaseOutputBytes {
            return "case-output-bytes must be between 0 and \(RequestRules.maximumCaseOutputBytes)"
        }
        let limits = ResourceLimits(
            cpuTimeMilliseconds: maximumCPUTimeMilliseconds, maxFileSizeBytes: maximumFileSizeBytes,
            compileWallTimeMilliseconds: maximumCompileWallTimeMilliseconds, compileMemoryBytes: maximumCompileMemoryBytes)
        let defaults = ResourceLimits(
            compileWallTimeMilliseconds: defaultCompileWallTimeMilliseconds, compileMemoryBytes: defaultCompileMemoryBytes)
        return RequestRules.problem(judgeLimits: limits).map { "a judge maximum: \($0)" }
            ?? RequestRules.problem(judgeLimits: defaults).map { "a judge default: \($0)" }
    }

    /// Why `options` may not be passed to a `language` compile, or nil when every one is allowed.
    public func problem(compilerOptions options: [String], language: Language?) -> String? {
        guard allowCompilerOptions else { return "field 'compiler_options' is not allowed on this worker" }
        guard let language, let prefixes = compilerOptionPrefixes[language], !prefixes.isEmpty else {
            return "field 'compiler_options' is not allowed for \(language?.rawValue ?? "a shell command"): it has no compile step"
        }
        for option in options where !prefixes.contains(where: { option.hasPrefix($0) }) {
            return "field 'compiler_options' has '\(option)', which is not allowed for \(language.rawValue) "
                + "(allowed prefixes: \(prefixes.joined(separator: " ")))"
        }
        return nil
    }
}
