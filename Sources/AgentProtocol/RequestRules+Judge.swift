import FoundationEssentials
import Judging

/// The rules for the fields of revision 2 (judge mode, files, arguments, compile and CPU limits).
extension RequestRules {
    /// Most bytes of all ``RunRequest/files`` together.
    public static let maximumFilesBytes = 2 << 20
    /// Most bytes of a program's arguments together (one case's, or the request's).
    public static let maximumArgumentBytes = 64 << 10
    /// Most compiler options, and the longest one.
    public static let maximumCompilerOptions = 64
    public static let maximumCompilerOptionBytes = 4096
    /// Most test cases the agent runs for one request (an operator's own maximum is lower: 100 by default).
    public static let maximumTests = 1000
    /// Most bytes of stdout or stderr a case result keeps.
    public static let maximumCaseOutputBytes = 1 << 20
    /// Largest file a program may be allowed to write: 16 GiB (bounded in practice by its tmpfs).
    public static let maximumFileSizeBytes = 16 << 30

    /// Files: at most ``WorkFileRules/maximumFiles``, names by ``WorkFileRules``, none twice, at most
    /// ``maximumFilesBytes`` in all.
    public static func problem(files: [WorkFile]) -> String? {
        if files.count > WorkFileRules.maximumFiles {
            return "field 'files' has \(files.count) entries, the maximum is \(WorkFileRules.maximumFiles)"
        }
        for (index, file) in files.enumerated() {
            if let problem = WorkFileRules.problem(name: file.name) { return "field 'files[\(index)].name' \(problem)" }
        }
        // Two names at least to clash; one request in most has no files at all.
        if files.count > 1, let clash = WorkFileRules.clash(names: files.map { $0.name }) {
            return "field 'files' names '\(clash)' twice (or as a file and a directory)"
        }
        let total = files.reduce(0) { $0 + $1.content.count }
        if total > maximumFilesBytes { return "field 'files' holds \(total) bytes, the maximum is \(maximumFilesBytes)" }
        return nil
    }

    /// Arguments reach exec as C strings: no NUL, at most ``maximumArgumentBytes`` together.
    public static func problem(arguments: [String], field: String = "args") -> String? {
        if arguments.contains(where: { $0.utf8.contains(0) }) { return "field '\(field)' must not contain a NUL byte" }
        if arguments.reduce(0, { $0 + $1.utf8.count + 1 }) > maximumArgumentBytes {
            return "field '\(field)' must be at most \(maximumArgumentBytes) bytes in all"
        }
        return nil
    }

    /// Compiler options: at most ``maximumCompilerOptions`` of at most ``maximumCompilerOptionBytes``, no NUL.
    /// Which flags are allowed at all is the operator's decision, made on the host.
    public static func problem(compilerOptions: [String]) -> String? {
        if compilerOptions.count > maximumCompilerOptions {
            return "field 'compiler_options' has more than \(maximumCompilerOptions) options"
        }
        if compilerOptions.contains(where: { $0.isEmpty || $0.utf8.count > maximumCompilerOptionBytes || $0.utf8.contains(0) }) {
            return "field 'compiler_options' must hold non-empty options of at most \(maximumCompilerOptionBytes) bytes without NUL"
        }
        return nil
    }

    /// The limits of revision 2, when set: CPU time and compile wall time like wall time, compile memory
    /// like memory, file size from 1 byte to ``maximumFileSizeBytes``.
    public static func problem(judgeLimits limits: ResourceLimits) -> String? {
        limits.cpuTimeMilliseconds.flatMap {
            outside($0, minimumWallTimeMilliseconds, maximumWallTimeMilliseconds, "limits.cpu_time_ms")
        }
            ?? limits.compileWallTimeMilliseconds.flatMap {
                outside($0, minimumWallTimeMilliseconds, maximumWallTimeMilliseconds, "limits.compile_wall_time_ms")
            }
            ?? limits.compileMemoryBytes.flatMap {
                outside($0, minimumMemoryBytes, maximumMemoryBytes, "limits.compile_memory_bytes")
            }
            ?? limits.maxFileSizeBytes.flatMap { outside($0, 1, maximumFileSizeBytes, "limits.max_file_size_bytes") }
    }

    /// Every limit of a step, old and new.
    static func problem(allLimits limits: ResourceLimits) -> String? {
        problem(limits: limits) ?? problem(judgeLimits: limits)
    }

    /// The judge part of a request: 1 to ``maximumTests`` cases with valid limits, arguments and sizes.
    public static func problem(judge: JudgeSpec) -> String? {
        if judge.tests.isEmpty { return "field 'tests' must not be empty" }
        if judge.tests.count > maximumTests { return "field 'tests' has \(judge.tests.count) cases, the maximum is \(maximumTests)" }
        if judge.caseOutputBytes < 0 || judge.caseOutputBytes > maximumCaseOutputBytes {
            return "case output bound must be 0 ... \(maximumCaseOutputBytes) bytes"
        }
        var inputBytes = 0
        for (index, test) in judge.tests.enumerated() {
            inputBytes += test.stdin.count + (test.expectedOutput?.count ?? 0)
            if let problem = problem(allLimits: test.limits) ?? problem(arguments: test.arguments, field: "args") {
                return problem.replacing("field '", with: "field 'tests[\(index)].")
            }
        }
        if inputBytes > maximumStdinBytes {
            return "field 'tests' holds \(inputBytes) bytes of input and expected output, the maximum is \(maximumStdinBytes)"
        }
        if let checker = judge.checker, checker.source.utf8.count > maximumSourceBytes {
            return "field 'checker.code' must be at most \(maximumSourceBytes) bytes"
        }
        return problem(allLimits: judge.checkerLimits)
    }

    /// The revision 2 fields of a request, first problem found.
    static func judgeProblem(request: RunRequest) -> String? {
        if case .project(_, let entry) = request.workload {
            if let problem = WorkFileRules.problem(name: entry) { return "field 'entry' \(problem)" }
            if !request.files.contains(where: { $0.name == entry }) { return "field 'entry' names '\(entry)', which is not in 'files'" }
        }
        return problem(files: request.files)
            ?? problem(arguments: request.arguments)
            ?? problem(compilerOptions: request.compilerOptions)
            ?? problem(judgeLimits: request.limits)
            ?? request.judge.flatMap { problem(judge: $0) }
    }
}
