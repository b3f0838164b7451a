import AgentProtocol
import FoundationEssentials
import Glibc
import Languages

/// Runs one ``RunRequest`` end to end: work directory, files, optional compile, then one run (or, in
/// judge mode, one run per test case: `JobRunner+Judge.swift`), verdict, clean-up.
final class JobRunner {
    let sandbox: Sandbox
    let reaper: ChildReaper
    /// Nil when the image has none: shell commands still run, programs fail with the reason.
    let languages: LanguageRegistry?
    private var jobCount = 0
    /// The current request's language variables (`GOCACHE=...`), added to every step's environment.
    private(set) var languageEnvironment: [String] = []
    /// Set by the frame server around a request that asked for ``RunRequest/streamOutput``: where the run
    /// step's output goes while it runs. Compile steps and judge cases never stream (docs/agent-protocol.md).
    var outputSink: OutputSink?
    /// Clean-up of the last request that waits until its result is sent (``finishRequest()``), newest first.
    private var pendingCleanUp: [() -> Void] = []
    /// The next requests' directories, cgroups and shells, when a request asked for them
    /// (``prepareNext(limits:count:forkServers:)``), in request order.
    private var prepared: [PreparedJob] = []
    /// Fork servers started ahead (``RunRequest/prepareForkServers``), for the programs of later requests.
    let warmForkServers = WarmForkServers()

    /// The job's shell: bash-static when the image has it (bash itself, without the dynamic loader and
    /// its relocations, which under TCG cost several times the shell's own start; docs/guest-image.md).
    static let shell: String = access("/usr/bin/bash-static", X_OK) == 0 ? "/usr/bin/bash-static" : "bash"

    /// gcc forks cc1, as, collect2 and ld: a tiny maxProcesses must not turn into a confusing compile error.
    static let minimumCompileProcesses = 16
    /// g++ with <iostream> peaks near 70 MiB plus its own text pages; under a 64 MiB memory.max it thrashes
    /// on reclaiming them until the wall limit instead of failing. The limit is for the program, not the
    /// compiler, so compiles get at least this much (still bounded: a template bomb cannot take the VM).
    static let minimumCompileMemoryBytes = 192 << 20

    init(sandbox: Sandbox, reaper: ChildReaper, languages: LanguageRegistry?) {
        self.sandbox = sandbox
        self.reaper = reaper
        self.languages = languages
    }

    func definition(_ language: Language) throws -> LanguageDefinition {
        guard let languages else { throw AgentError(.invalidRequest, "this image has no language registry") }
        return try languages.definition(language)
    }

    /// The request with its limits (and its cases') raised to the floors of the language it runs.
    private func raisingLimits(_ request: RunRequest) throws -> RunRequest {
        let language: Language
        switch request.workload {
        case .shell: return request
        case .program(let name, _), .project(let name, _): language = name
        }
        let definition = try definition(language)
        var raised = request
        raised.limits = definition.raising(request.limits)
        if var judge = raised.judge {
            judge.tests = judge.tests.map { test in
                var test = test
                test.limits = definition.raising(test.limits)
                return test
            }
            raised.judge = judge
        }
        return raised
    }

    /// Runs the clean-up the last request left for after its result: its step's cgroup, its work
    /// directory, what it left in /tmp. Nothing of it decides the result, and a VM is usually ended by
    /// the host as soon as the result arrives; an agent that serves another request first gets here.
    var hasPendingCleanUp: Bool { !pendingCleanUp.isEmpty }

    func finishRequest() {
        while let cleanUp = pendingCleanUp.popLast() { cleanUp() }
    }

    /// Finishes the last request's clean-up and makes the work directory, cgroup and shell of each of
    /// the next `count` requests that has none yet (``RunRequest/prepareNextRequest``,
    /// ``RunRequest/preparedRequests``). A failure only costs a request the time to make them.
    ///
    /// Two are made by the snapshot's template of a worker with warm VMs: a warm VM's priming then
    /// uses the first and leaves the second to its job, so a primed VM has spawned no shell of its
    /// own, under TCG the dearest part of a priming (docs/snapshots.md, "Warm VMs").
    ///
    /// With `forkServers`, the image's fork servers are started too (``RunRequest/prepareForkServers``).
    func prepareNext(limits: ResourceLimits?, count: Int, forkServers: Bool) {
        finishRequest()
        if forkServers { startForkServersAhead() }
        for number in (jobCount + 1)...(jobCount + max(1, count)) where !prepared.contains(where: { $0.number == number }) {
            do {
                prepared.append(
                    try PreparedJob.make(
                        number: number, limits: limits ?? ResourceLimits(), sandbox: sandbox, reaper: reaper, shell: Self.shell,
                        environment: { self.stepEnvironment(directory: $0) }))
            } catch {
                Log.error("preparing request \(number)'s directory and cgroup failed: \(error)")
                return
            }
        }
    }

    /// Starts the image's fork servers (``WarmForkServers``) and runs each one's language's hello world
    /// through it, as a request would: a server that cannot run it is not kept. Why the trial: code a
    /// snapshot's template never ran is not in its memory at all (the agent's program path, the
    /// server's fork and the child's set-up), and a clone would read it from its disk in the middle of
    /// its job, a major fault whose block-layer path TCG translates first (docs/snapshots.md).
    private func startForkServersAhead() {
        guard let languages, sandbox.confined else { return }
        warmForkServers.start(languages) { definition, environment in startForkServer(definition, languageEnvironment: environment) }
        for definition in languages.languages where warmForkServers.server(for: definition.name) != nil {
            var trial = RunRequest(
                id: "fork-server-trial-\(definition.name)", workload: .program(language: Language(definition.name), source: definition.hello.source))
            // It is not a VM's last request: the slots prepared so far stay. Number 0, which no request
            // has: the requests keep their numbers, and with them their directories' and cgroups' names.
            trial.prepareNextRequest = true
            finishRequest()
            let result: RunResult
            do { result = try run(trial, number: 0) } catch { result = internalError(trial, "agent failed: \(error)") }
            guard result.verdict == .ok, result.stdout == Data(definition.hello.stdout.utf8) else {
                Log.error("\(definition.name)'s fork server failed its hello world (\(result.message ?? result.verdict.rawValue)); not kept")
                warmForkServers.retire(definition.name)
                continue
            }
        }
        finishRequest()
        warmForkServers.waitUntilIdle()
    }

    /// Takes the slot prepared for request `number`, if any, and retires the others that no request
    /// will use: those of earlier requests, and, when request `number` is a job (it prepares nothing,
    /// so it is its VM's last), those of later ones.
    private func takePrepared(number: Int, isLast: Bool) -> PreparedJob? {
        var taken: PreparedJob?
        prepared.removeAll { slot in
            if slot.number == number {
                taken = slot
            } else if slot.number < number || isLast {
                retire(slot)
            } else {
                return false
            }
            return true
        }
        return taken
    }

    /// Kills a slot's shell at once and leaves the rest to the request's clean-up. Why at once: an idle
    /// shell of the runner user is a process a job could ptrace and have run its code outside the
    /// job's own cgroup, uncounted (CPU time, memory, processes). A process with SIGKILL pending never
    /// runs user code again, so sending it is enough; the reap can wait.
    private func retire(_ slot: PreparedJob) {
        if let shell = slot.shell { kill(shell.pid, SIGKILL) }
        let directory = slot.directory
        pendingCleanUp.append { directory.remove() }
        if let cgroup = slot.cgroup { pendingCleanUp.append { [reaper] in cgroup.destroy(reaper: reaper) } }
        // Newest first: the shell is reaped (its descriptors closed) before its cgroup goes.
        if let shell = slot.shell { pendingCleanUp.append { [reaper] in shell.discard(cgroup: slot.cgroup, reaper: reaper) } }
    }

    /// The work directory of request `number`, the prepared one when it is for this request, and the
    /// prepared shell when the request is a shell command it can run (one run, no judge).
    private func workDirectory(number: Int, for request: RunRequest) throws -> (WorkDirectory, PreparedShell?) {
        let sizeBytes = request.limits.memoryBytes
        if let slot = takePrepared(number: number, isLast: !request.prepareNextRequest) {
            // Unused by a request whose steps have cgroups of other names (a compile, judge cases).
            if let cgroup = slot.cgroup { pendingCleanUp.append { [reaper] in cgroup.destroy(reaper: reaper) } }
            var shell = slot.shell
            if case .shell = request.workload, request.judge == nil {} else {
                shell?.discard(cgroup: slot.cgroup, reaper: reaper)
                shell = nil
            }
            if let directory = slot.directory(sizedFor: sizeBytes) {
                PhaseTrace.mark("prepared work directory")
                return (directory, shell)
            }
            shell?.discard(cgroup: slot.cgroup, reaper: reaper)
            slot.directory.remove()
        }
        let directory = try WorkDirectory.create(number: number, sizeBytes: sizeBytes, sandbox: sandbox)
        PhaseTrace.mark("work directory")
        return (directory, nil)
    }

    /// Never throws: every failure becomes a result with the `internal_error` verdict.
    func run(_ request: RunRequest) -> RunResult {
        finishRequest()
        jobCount += 1
        do {
            return try run(request, number: jobCount)
        } catch {
            Log.error("job \(Log.printable(request.id)): \(error)")
            return internalError(request, "agent failed: \(error)")
        }
    }

    func internalError(_ request: RunRequest, _ message: String) -> RunResult {
        RunResult(
            id: request.id, verdict: .internalError, exitCode: nil, signal: nil, stdout: Data(), stderr: Data(),
            stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 0, cpuTimeMilliseconds: 0,
            peakMemoryBytes: 0, message: withSandboxNote(message))
    }

    private func run(_ request: RunRequest, number: Int) throws -> RunResult {
        let request = try raisingLimits(request)
        let limits = request.limits
        let (directory, preparedShell) = try workDirectory(number: number, for: request)
        pendingCleanUp.append { [sandbox] in
            directory.remove()
            sandbox.removeJobLeftovers()
        }
        defer { languageEnvironment = [] }
        for file in request.files { try directory.write(file.name, [UInt8](file.content), sandbox: sandbox) }
        if let preparedShell, case .shell(let command) = request.workload {
            do {
                try preparedShell.load(command: command, arguments: request.arguments, stdin: request.stdin)
            } catch {
                preparedShell.discard(cgroup: nil, reaper: reaper)
                throw error
            }
            PhaseTrace.mark("stdin")
            let outcome = try step(
                "job-\(number)", [], in: directory, stdin: -1, limits: limits, output: request.streamOutput ? outputSink : nil,
                cleanUpLater: { self.pendingCleanUp.append($0) }, preparedShell: preparedShell)
            return result(request, outcome)
        }

        var argv: [String]
        /// The program's language and entry, for a fork server.
        var program: (definition: LanguageDefinition, entry: String, importable: Bool)?
        switch request.workload {
        case .shell(let command):
            // An explicit $0 ("bash", what bash -c sets anyway) so that arguments, the job's or a case's,
            // are $1, $2, ... as in a script.
            argv = [Self.shell, "-c", command, "bash"]
        case .program(let language, let source):
            let definition = try definition(language)
            let recipe = definition.recipe(
                entry: definition.sourceFile(for: source), sources: request.files.map(\.name), options: request.compilerOptions,
                importable: !request.files.isEmpty, workDirectory: directory.path)
            languageEnvironment = recipe.environment
            try directory.write(recipe.sourceFile, Array(source.utf8), sandbox: sandbox)
            if let failure = try compile(recipe, request, in: directory, label: "job-\(number)-build") { return failure }
            argv = recipe.run
            program = (definition, recipe.sourceFile, !request.files.isEmpty)
        case .project(let language, let entry):
            let definition = try definition(language)
            let recipe = definition.recipe(
                entry: entry, sources: request.files.map(\.name), options: request.compilerOptions, importable: true,
                workDirectory: directory.path)
            languageEnvironment = recipe.environment
            if let failure = try compile(recipe, request, in: directory, label: "job-\(number)-build") { return failure }
            argv = recipe.run
            program = (definition, entry, true)
        }
        if let judge = request.judge {
            let server = program.flatMap { forkServer(for: $0.definition) }
            defer { if let server, server.owned { server.server.retire() } }
            let forked = server.flatMap { server in
                program.map { ForkedProgram(server: server.server, entry: $0.entry, importable: $0.importable, arguments: []) }
            }
            return try runCases(judge, request, argv: argv, base: directory, number: number, forked: forked)
        }
        let stdinFD = try openStdin(request.stdin, label: "\(number)")
        defer { close(stdinFD) }
        PhaseTrace.mark("stdin")
        // A single run forks only from a server started ahead: starting one costs what a spawn does.
        let forked = program.flatMap { program in
            warmForkServers.server(for: program.definition.name, matching: languageEnvironment).map {
                ForkedProgram(server: $0, entry: program.entry, importable: program.importable, arguments: request.arguments)
            }
        }
        let outcome = try step(
            "job-\(number)", argv + request.arguments, in: directory, stdin: stdinFD, limits: limits, forked: forked,
            output: request.streamOutput ? outputSink : nil, cleanUpLater: { self.pendingCleanUp.append($0) })
        return result(request, outcome)
    }

    /// Runs `argv` (or `forked`, the same program from its fork server) as one sandboxed step in
    /// `directory` under `limits`.
    func step(
        _ name: String, _ argv: [String], in directory: WorkDirectory, stdin: Int32, limits: ResourceLimits,
        forked: ForkedProgram? = nil, output: OutputSink? = nil, cleanUpLater: ((@escaping () -> Void) -> Void)? = nil,
        preparedShell: PreparedShell? = nil
    ) throws -> StepOutcome {
        try StepRunner(sandbox: sandbox, reaper: reaper).run(StepSpec(
            name: name, argv: argv, environment: stepEnvironment(directory: directory.path), directory: directory.path, stdinFD: stdin,
            wallTimeMilliseconds: limits.wallTimeMilliseconds, memoryBytes: limits.memoryBytes,
            maxProcesses: limits.maxProcesses, maxOutputBytesPerStream: limits.maxOutputBytesPerStream,
            cpuTimeMilliseconds: limits.cpuTimeMilliseconds, maxFileSizeBytes: limits.maxFileSizeBytes, forked: forked,
            output: output, cleanUpLater: cleanUpLater, preparedShell: preparedShell))
    }

    /// The environment of a step whose work directory is `directory`.
    func stepEnvironment(directory: String) -> [String] {
        ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=\(directory)", "TMPDIR=\(directory)", "LANG=C.UTF-8"]
            + GuestNetwork.jobEnvironment + languageEnvironment
    }

    /// The compile limits: the request's compile wall time and memory when set, else the run's; never
    /// below the compiler's floors.
    static func compileLimits(_ limits: ResourceLimits) -> ResourceLimits {
        ResourceLimits(
            wallTimeMilliseconds: limits.compileWallTimeMilliseconds ?? limits.wallTimeMilliseconds,
            memoryBytes: max(limits.compileMemoryBytes ?? limits.memoryBytes, minimumCompileMemoryBytes),
            maxProcesses: max(limits.maxProcesses, minimumCompileProcesses),
            maxOutputBytesPerStream: limits.maxOutputBytesPerStream)
    }

    /// Compiles `recipe` in `directory` when the language has a compile step; the failure result, or nil.
    func compile(_ recipe: LanguageRecipe, _ request: RunRequest, in directory: WorkDirectory, label: String) throws -> RunResult? {
        guard let compile = recipe.compile else { return nil }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else { throw AgentError.system("open /dev/null") }
        defer { close(devNull) }
        let limits = Self.compileLimits(request.limits)
        let built = try step(label, compile, in: directory, stdin: devNull, limits: limits)
        return built.succeeded ? nil : compileFailure(request, built, limits)
    }

    /// Stdin is a file, not a pipe: no writer to schedule, and the job may seek. It lives outside the
    /// work directory and is unlinked at once, so only the open descriptor reaches the job (and its
    /// reopening through `/dev/stdin`).
    func openStdin(_ bytes: Data, label: String) throws -> Int32 {
        let (writer, reader) = try Posix.unlinkedFile("stdin-\(label)")
        defer { close(writer) }
        do {
            try Posix.writeAll(writer, [UInt8](bytes))
        } catch {
            close(reader)
            throw error
        }
        return reader
    }

    private func result(_ request: RunRequest, _ outcome: StepOutcome) -> RunResult {
        let (verdict, message) = StepVerdict.classify(outcome, request.limits)
        return RunResult(
            id: request.id, verdict: verdict, exitCode: outcome.exitCode, signal: outcome.signal,
            stdout: Data(outcome.stdout), stderr: Data(outcome.stderr),
            stdoutTruncated: outcome.stdoutTruncated, stderrTruncated: outcome.stderrTruncated,
            wallTimeMilliseconds: outcome.wallTimeMilliseconds, cpuTimeMilliseconds: outcome.cpuTimeMilliseconds,
            peakMemoryBytes: outcome.peakMemoryBytes, message: withSandboxNote(message))
    }

    private func compileFailure(_ request: RunRequest, _ outcome: StepOutcome, _ limits: ResourceLimits) -> RunResult {
        let reason: String
        if outcome.timedOut {
            reason = "compilation exceeded the time limit of \(Format.duration(milliseconds: limits.wallTimeMilliseconds))"
        } else if outcome.oomKilled {
            reason = "compilation exceeded the memory limit of \(Format.bytes(limits.memoryBytes))"
        } else if outcome.outputOverflow {
            reason = "compiler output exceeded \(Format.bytes(limits.maxOutputBytesPerStream))"
        } else if let signal = outcome.signal {
            reason = "compiler killed by signal \(signal) (\(SignalNames.name(signal)))"
        } else {
            reason = "compilation failed (exit code \(outcome.exitCode ?? -1))"
        }
        var diagnostics = outcome.stderr
        diagnostics.append(contentsOf: outcome.stdout.prefix(max(0, limits.maxOutputBytesPerStream - diagnostics.count)))
        return RunResult(
            id: request.id, verdict: .compileError, exitCode: outcome.exitCode, signal: outcome.signal,
            stdout: Data(), stderr: Data(outcome.stderr),
            stdoutTruncated: false, stderrTruncated: outcome.stderrTruncated,
            wallTimeMilliseconds: outcome.wallTimeMilliseconds, cpuTimeMilliseconds: outcome.cpuTimeMilliseconds,
            peakMemoryBytes: outcome.peakMemoryBytes, compileOutput: Data(diagnostics), message: withSandboxNote(reason))
    }

    func withSandboxNote(_ message: String?) -> String? {
        guard let reason = sandbox.unconfinedReason else { return message }
        return message.map { "\($0) [unconfined: \(reason)]" } ?? "unconfined: \(reason)"
    }
}

/// Names for the signals a job typically dies of.
enum SignalNames {
    static func name(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
            SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
            SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
            SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
