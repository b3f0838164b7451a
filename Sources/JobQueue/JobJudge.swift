import Judging

/// One entry of a job's `files`: a relative path and its bytes (sent as UTF-8 text or base64).
public struct JobFile: Sendable, Equatable {
    public var name: String
    public var content: [UInt8]

    public init(name: String, content: [UInt8]) {
        self.name = name
        self.content = content
    }
}

/// One entry of a job's `tests`. Absent fields fall back to the job's own (`stdin`, `args`, `limits`).
public struct JobTestCase: Sendable, Equatable {
    /// `name`; unnamed cases are called by their 1-based position.
    public var name: String?
    public var stdin: [UInt8]?
    /// `args`.
    public var arguments: [String]?
    /// `expected_output`; without it (and without a checker) any clean run is accepted.
    public var expectedOutput: [UInt8]?
    /// `limits`, as asked: clamped like a job's.
    public var limits: JobRequest.RequestedLimits

    public init(
        name: String? = nil, stdin: [UInt8]? = nil, arguments: [String]? = nil, expectedOutput: [UInt8]? = nil,
        limits: JobRequest.RequestedLimits = .init()
    ) {
        self.name = name
        self.stdin = stdin
        self.arguments = arguments
        self.expectedOutput = expectedOutput
        self.limits = limits
    }
}

/// `checker`: a program that judges each case's output (convention in docs/wire-contract.md).
public struct JobChecker: Sendable, Equatable {
    public var language: JobLanguage
    public var code: String

    public init(language: JobLanguage, code: String) {
        self.language = language
        self.code = code
    }
}

/// Judge mode: the job's `tests`, `compare` or `checker`, and `stop_on_failure`.
public struct JobJudge: Sendable, Equatable {
    public var tests: [JobTestCase]
    /// `compare`; nil when the job named none (``Comparison/default`` applies).
    public var comparison: Comparison?
    public var checker: JobChecker?
    public var stopOnFailure: Bool

    public init(tests: [JobTestCase], comparison: Comparison? = nil, checker: JobChecker? = nil, stopOnFailure: Bool = false) {
        self.tests = tests
        self.comparison = comparison
        self.checker = checker
        self.stopOnFailure = stopOnFailure
    }
}
