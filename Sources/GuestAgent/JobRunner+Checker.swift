import AgentProtocol
import FoundationEssentials
import Glibc
import Languages

/// A checker compiled once per request, in its own directory; each case gets a copy of it.
struct PreparedChecker {
    let directory: WorkDirectory
    let run: [String]
    /// The checker's fork server when its language has one: a Python checker then skips the
    /// interpreter's start-up after every case, as the program does.
    let server: ForkServer?
    /// False for a server started ahead (``WarmForkServers``), which stays for later requests.
    let ownsServer: Bool
    let entry: String

    /// Removes the checker's directory and ends its fork server if it started one.
    func dispose() {
        if ownsServer { server?.retire() }
        directory.remove()
    }
}

// The checker convention (docs/wire-contract.md, "Checker"): `input.txt`, `expected.txt`, `output.txt`
// in its directory and as its three arguments; exit 0 accepts, 1 is a wrong answer, anything else is
// the checker's own failure.
extension JobRunner {
    /// The checker's files as it finds them.
    static let checkerFiles = (input: "input.txt", expected: "expected.txt", output: "output.txt")

    /// Writes and compiles the checker; on failure, the message of the request's `internal_error`.
    func prepareChecker(_ spec: CheckerSpec, _ request: RunRequest, number: Int) throws -> Result<PreparedChecker, CheckerFailure> {
        let directory = try WorkDirectory.create(
            label: "job-\(number)-checker", sizeBytes: JobRunner.compileLimits(request.limits).memoryBytes, sandbox: sandbox)
        let definition = try definition(spec.language)
        let recipe = definition.recipe(entry: definition.sourceFile(for: spec.source), workDirectory: directory.path)
        do {
            try directory.write(recipe.sourceFile, Array(spec.source.utf8), sandbox: sandbox)
            if let failure = try compile(recipe, request, in: directory, label: "job-\(number)-checker-build") {
                directory.remove()
                let detail = String(decoding: failure.compileOutput ?? Data(), as: UTF8.self)
                    .split(whereSeparator: \.isNewline).first { $0.contains("error") } ?? ""
                return .failure(CheckerFailure(
                    message: "checker failed to compile: \(failure.message ?? "")\(detail.isEmpty ? "" : ": \(detail)")"))
            }
        } catch {
            directory.remove()
            throw error
        }
        let server = forkServer(for: definition)
        return .success(PreparedChecker(
            directory: directory, run: recipe.run, server: server?.server, ownsServer: server?.owned ?? false, entry: recipe.sourceFile))
    }

    /// Runs the checker on one case's output.
    func check(
        _ checker: PreparedChecker, test: TestCase, output: [UInt8], limits: ResourceLimits, label: String, keeping: [String]
    ) throws -> (Verdict, String?) {
        let directory = try WorkDirectory.create(label: label, sizeBytes: limits.memoryBytes, sandbox: sandbox)
        defer {
            directory.remove()
            sandbox.removeJobLeftovers(keeping: keeping)
        }
        try checker.directory.copyContents(to: directory, sandbox: sandbox)
        let files = Self.checkerFiles
        try directory.write(files.input, [UInt8](test.stdin), sandbox: sandbox)
        try directory.write(files.expected, [UInt8](test.expectedOutput ?? Data()), sandbox: sandbox)
        try directory.write(files.output, output, sandbox: sandbox)
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else { throw AgentError.system("open /dev/null") }
        defer { close(devNull) }
        let arguments = [files.input, files.expected, files.output]
        let forked = checker.server.map { ForkedProgram(server: $0, entry: checker.entry, importable: false, arguments: arguments) }
        let outcome = try step(label, checker.run + arguments, in: directory, stdin: devNull, limits: limits, forked: forked)
        let (verdict, message) = StepVerdict.classify(outcome, limits)
        let said = Self.summary(outcome.stderr) ?? Self.summary(outcome.stdout)
        switch (verdict, outcome.exitCode) {
        case (.ok, _):
            return (.accepted, nil)
        case (.runtimeError, 1?):
            return (.wrongAnswer, "checker: " + (said ?? "wrong answer"))
        default:
            // Never the program's fault: the checker crashed, hung or broke a limit.
            return (.internalError, "checker failed: \(message ?? verdict.rawValue)" + (said.map { ": \($0)" } ?? ""))
        }
    }

    /// The last non-blank line a checker printed: its verdict's reason, or a traceback's exception.
    private static func summary(_ bytes: [UInt8]) -> String? {
        let lines = String(decoding: bytes.prefix(4096), as: UTF8.self).split(whereSeparator: \.isNewline)
        return lines.last { $0.contains { !$0.isWhitespace } }.map { String($0.prefix(300)) }
    }
}

/// Why the checker could not be prepared: the request ends `internal_error` with this message.
struct CheckerFailure: Error {
    var message: String
}
