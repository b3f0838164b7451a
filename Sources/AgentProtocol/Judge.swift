import FoundationEssentials
import Judging

/// A file written into the job's working directory before compile and run (revision 2).
public struct WorkFile: Codable, Sendable, Equatable {
    /// A relative path (``WorkFileRules``); directories are created as needed.
    public var name: String
    public var content: Data

    public init(name: String, content: Data) {
        self.name = name
        self.content = content
    }
}

/// One test case of a judged job: the program is run once per case, in a fresh copy of the compiled
/// working directory and its own cgroup.
public struct TestCase: Codable, Sendable, Equatable {
    /// Shown in results; the host names unnamed cases by their 1-based position.
    public var name: String
    public var stdin: Data
    /// The program's arguments for this case (the request's ``RunRequest/arguments`` when the job gave none).
    public var arguments: [String]
    /// What the program should print; nil accepts any output of a clean run (unless a checker judges).
    public var expectedOutput: Data?
    /// This case's limits, already defaulted and clamped by the host.
    public var limits: ResourceLimits

    public init(name: String, stdin: Data = Data(), arguments: [String] = [], expectedOutput: Data? = nil, limits: ResourceLimits) {
        self.name = name
        self.stdin = stdin
        self.arguments = arguments
        self.expectedOutput = expectedOutput
        self.limits = limits
    }
}

/// A program that judges each case's output instead of a ``Comparison``.
///
/// Convention (docs/wire-contract.md): it runs in its own sandbox step, in a directory holding
/// `input.txt` (the case's stdin), `expected.txt` (its expected output, empty when none) and `output.txt`
/// (the program's stdout), and is called with those three names as arguments, in that order. Exit 0
/// accepts, 1 is a wrong answer, anything else (another code, a signal, a limit) is a failure of the
/// checker, reported as `internal_error` and never blamed on the program.
public struct CheckerSpec: Codable, Sendable, Equatable {
    public var language: Language
    public var source: String

    public init(language: Language, source: String) {
        self.language = language
        self.source = source
    }
}

/// How a request is judged (revision 2): its cases, and what decides whether a case's output passes.
public struct JudgeSpec: Codable, Sendable, Equatable {
    public var tests: [TestCase]
    /// Used when there is no ``checker``.
    public var comparison: Comparison
    public var checker: CheckerSpec?
    /// After the first case that is not accepted, the rest are `skipped`.
    public var stopOnFailure: Bool
    /// stdout and stderr kept per case in ``TestResult`` (the failing case's full output is the result's own).
    public var caseOutputBytes: Int
    /// Limits of each checker run (its compile takes the request's compile limits).
    public var checkerLimits: ResourceLimits

    public init(
        tests: [TestCase], comparison: Comparison = .default, checker: CheckerSpec? = nil, stopOnFailure: Bool = false,
        caseOutputBytes: Int = 4096, checkerLimits: ResourceLimits = ResourceLimits()
    ) {
        self.tests = tests
        self.comparison = comparison
        self.checker = checker
        self.stopOnFailure = stopOnFailure
        self.caseOutputBytes = caseOutputBytes
        self.checkerLimits = checkerLimits
    }
}

/// How one case went.
public struct TestResult: Codable, Sendable, Equatable {
    public var name: String
    /// `accepted`, `wrong_answer`, `time_limit`, `cpu_time_limit`, `memory_limit`, `output_limit`,
    /// `runtime_error`, `skipped`, or `internal_error` when the checker failed.
    public var verdict: Verdict
    public var exitCode: Int32?
    public var signal: Int32?
    public var wallTimeMilliseconds: Int
    public var cpuTimeMilliseconds: Int
    public var peakMemoryBytes: Int
    /// At most ``JudgeSpec/caseOutputBytes``; the flag says more was printed (or dropped at the output limit).
    public var stdout: Data
    public var stderr: Data
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    /// Why the verdict (a limit, a signal, the checker's complaint); nil when accepted.
    public var message: String?

    public init(
        name: String, verdict: Verdict, exitCode: Int32? = nil, signal: Int32? = nil, wallTimeMilliseconds: Int = 0,
        cpuTimeMilliseconds: Int = 0, peakMemoryBytes: Int = 0, stdout: Data = Data(), stderr: Data = Data(),
        stdoutTruncated: Bool = false, stderrTruncated: Bool = false, message: String? = nil
    ) {
        self.name = name
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.wallTimeMilliseconds = wallTimeMilliseconds
        self.cpuTimeMilliseconds = cpuTimeMilliseconds
        self.peakMemoryBytes = peakMemoryBytes
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.message = message
    }
}

extension RunRequest {
    /// Largest result frame payload this request can produce: the three bounded streams of the result
    /// (stdout, stderr, compile output) plus each case's two bounded streams, base64-encoded, plus slack
    /// for the other fields. The host bounds what it reads by this.
    public var maximumResultBytes: Int {
        func base64(_ bytes: Int) -> Int { (max(0, bytes) + 2) / 3 * 4 }
        let perStream = judge.map { spec in spec.tests.map(\.limits.maxOutputBytesPerStream).max() ?? 0 } ?? 0
        let streams = 3 * base64(max(limits.maxOutputBytesPerStream, perStream))
        let cases = (judge?.tests.count ?? 0) * (2 * base64(judge?.caseOutputBytes ?? 0) + 4096)
        let (total, overflow) = streams.addingReportingOverflow(cases + (256 << 10))
        return overflow ? Int(Int32.max) : min(Int(Int32.max), total)
    }
}
