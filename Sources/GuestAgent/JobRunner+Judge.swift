import AgentProtocol
import FoundationEssentials
import Glibc
import Languages

// Judge mode: the program was compiled once in `base`; each case runs in a fresh copy of it, in its own
// cgroup with its own limits, and its output is compared or checked.
extension JobRunner {
    /// `forked`: the program's fork server, when its language has one (the cases then skip the
    /// interpreter's start-up; their arguments are filled in per case).
    func runCases(
        _ judge: JudgeSpec, _ request: RunRequest, argv: [String], base: WorkDirectory, number: Int, forked: ForkedProgram?
    ) throws -> RunResult {
        let checker: PreparedChecker?
        if let spec = judge.checker {
            switch try prepareChecker(spec, request, number: number) {
            case .success(let prepared): checker = prepared
            case .failure(let failure): return internalError(request, failure.message)
            }
        } else {
            checker = nil
        }
        defer { checker?.dispose() }

        var results: [TestResult] = []
        var reported: (test: TestResult, stdout: [UInt8], stderr: [UInt8])?
        var stopped = false
        for (index, test) in judge.tests.enumerated() {
            if stopped {
                results.append(TestResult(name: test.name, verdict: .skipped, message: "not run: an earlier case failed"))
                continue
            }
            let (result, stdout, stderr) = try runCase(
                test, judge, argv: argv, forked: forked, base: base, checker: checker, label: "job-\(number)-case-\(index + 1)",
                keeping: [base.path] + (checker.map { [$0.directory.path] } ?? []))
            results.append(result)
            // The first failing case's output is the job's; while all pass, the last one's.
            if reported == nil || reported?.test.verdict == .accepted { reported = (result, stdout, stderr) }
            if result.verdict != .accepted && judge.stopOnFailure { stopped = true }
        }
        let shown = reported!
        let passed = results.count { $0.verdict == .accepted }
        let failure = results.first { $0.verdict != .accepted && $0.verdict != .skipped }
        let message = failure.map { "\(passed) of \(results.count) tests passed; test '\($0.name)': \($0.message ?? $0.verdict.rawValue)" }
        return RunResult(
            id: request.id, verdict: failure?.verdict ?? .accepted, exitCode: shown.test.exitCode, signal: shown.test.signal,
            stdout: Data(shown.stdout), stderr: Data(shown.stderr),
            stdoutTruncated: shown.test.stdoutTruncated && shown.stdout.count < judge.caseOutputBytes,
            stderrTruncated: shown.test.stderrTruncated && shown.stderr.count < judge.caseOutputBytes,
            wallTimeMilliseconds: shown.test.wallTimeMilliseconds, cpuTimeMilliseconds: shown.test.cpuTimeMilliseconds,
            peakMemoryBytes: shown.test.peakMemoryBytes, message: withSandboxNote(message), tests: results)
    }

    /// One case: a fresh copy of the compiled directory, the program, then the comparison or the checker.
    private func runCase(
        _ test: TestCase, _ judge: JudgeSpec, argv: [String], forked: ForkedProgram?, base: WorkDirectory,
        checker: PreparedChecker?, label: String,
        keeping: [String]
    ) throws -> (TestResult, [UInt8], [UInt8]) {
        let directory = try WorkDirectory.create(label: label, sizeBytes: test.limits.memoryBytes, sandbox: sandbox)
        defer {
            directory.remove()
            // Nothing a case leaves in /tmp or /dev/shm may reach the next one.
            sandbox.removeJobLeftovers(keeping: keeping)
        }
        try base.copyContents(to: directory, sandbox: sandbox)
        let stdinFD = try openStdin(test.stdin, label: label)
        defer { close(stdinFD) }
        let program = forked.map {
            ForkedProgram(server: $0.server, entry: $0.entry, importable: $0.importable, arguments: test.arguments)
        }
        let outcome = try step(label, argv + test.arguments, in: directory, stdin: stdinFD, limits: test.limits, forked: program)

        var (verdict, message) = StepVerdict.classify(outcome, test.limits)
        if verdict == .ok {
            (verdict, message) = try judgeOutput(test, judge, outcome.stdout, checker: checker, label: label, keeping: keeping)
        }
        let bound = judge.caseOutputBytes
        let result = TestResult(
            name: test.name, verdict: verdict, exitCode: outcome.exitCode, signal: outcome.signal,
            wallTimeMilliseconds: outcome.wallTimeMilliseconds, cpuTimeMilliseconds: outcome.cpuTimeMilliseconds,
            peakMemoryBytes: outcome.peakMemoryBytes, stdout: Data(outcome.stdout.prefix(bound)),
            stderr: Data(outcome.stderr.prefix(bound)),
            stdoutTruncated: outcome.stdoutTruncated || outcome.stdout.count > bound,
            stderrTruncated: outcome.stderrTruncated || outcome.stderr.count > bound, message: message)
        return (result, outcome.stdout, outcome.stderr)
    }

    /// A clean run's output against the case: the checker when there is one, else the comparison when
    /// the case has an expected output, else accepted.
    private func judgeOutput(
        _ test: TestCase, _ judge: JudgeSpec, _ stdout: [UInt8], checker: PreparedChecker?, label: String, keeping: [String]
    ) throws -> (Verdict, String?) {
        if let checker {
            return try check(
                checker, test: test, output: stdout, limits: judge.checkerLimits, label: label + "-checker", keeping: keeping)
        }
        guard let expected = test.expectedOutput else { return (.accepted, nil) }
        if judge.comparison.accepts(expected: expected, actual: stdout) { return (.accepted, nil) }
        return (.wrongAnswer, "output differs from the expected output (compare: \(judge.comparison.name))")
    }
}

extension JobRunner {
    /// The fork server a request's programs in `definition`'s language are forked from: the one started
    /// ahead when its variables are the request's (it never sees a program's data, so it stays for
    /// later requests), else a new one, which the caller retires (`owned`). Nil when neither is there.
    func forkServer(for definition: LanguageDefinition) -> (server: ForkServer, owned: Bool)? {
        if let warm = warmForkServers.server(for: definition.name, matching: languageEnvironment) { return (warm, false) }
        return startForkServer(definition, languageEnvironment: languageEnvironment).map { ($0, true) }
    }

    /// The fork server of the program's language, started (after the compile, or ahead of the request:
    /// ``WarmForkServers``) with the environment its programs get at start-up, `languageEnvironment`
    /// being the language's own variables (the interpreter reads its locale then); nil when the
    /// language has none, outside the confined guest, or when it cannot start (its programs are then
    /// spawned as usual).
    func startForkServer(_ definition: LanguageDefinition, languageEnvironment: [String]) -> ForkServer? {
        guard sandbox.confined, let argv = definition.forkServer else { return nil }
        do {
            return try ForkServer.start(
                argv: argv, environment: ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"] + languageEnvironment)
        } catch {
            Log.error("\(definition.name): cannot start its fork server (\(error)); spawning every case")
            return nil
        }
    }
}
