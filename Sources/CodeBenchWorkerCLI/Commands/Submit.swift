import ArgumentParser
import Foundation
import JobQueue
import Judging
import Languages
import Logging
import MicroVM
import RedisClient
import Worker

/// `codebench-worker submit`: what a platform does. Pushes one job, prints its statuses as they
/// arrive on its status list (BLPOP), then the result; the exit code reflects how it ended.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push one job onto the queue and print its statuses and result as they arrive.",
        discussion: """
            Exit code: 0 when the job is done with exit code 0 (judged: every case accepted), 1 when it is \
            done otherwise, 2 when it failed, 3 when no terminal status arrived in time.

            With --language, the first --file is the program; further --file options are sent as the job's \
            files (by their base name). --tests reads a JSON array of cases (the job's `tests` field); \
            --expected judges one case with --stdin. Judged jobs print a table of their cases.

            Examples:
              codebench-worker submit -- uname -a
              codebench-worker submit --language python --file hello.py --stdin 'input'
              codebench-worker submit --language cpp --file main.cpp --file shapes.h --file area.cpp --tests tests.json
              codebench-worker submit --language python --file sum.py --stdin '1 2' --expected 3
              codebench-worker submit --stream -- 'echo one; sleep 2; echo two'
            """
    )

    @Option(help: "Redis URL (also CODEBENCH_REDIS_URL).") var redisUrl: String?
    @Option(help: "Job id (default: a random one).") var id: String?
    @Option(name: [.customLong("intake-list"), .customLong("queue")], help: "List to push the job onto (e.g. jobs:high).")
    var intakeList = "jobs"
    @Option(help: "Prefix of the job's status list, as configured on the worker.") var statusKeyPrefix = ""
    @Option(help: "Language of --file: a name or alias of the image's (codebench-worker languages lists them).") var language: String?
    @Option(help: "Source file to run with --language; repeat to send more files.") var file: [String] = []
    @Option(help: "A command-line argument of the program (repeatable).") var arg: [String] = []
    @Option(help: "JSON file with an array of test cases (the job's `tests`).") var tests: String?
    @Option(help: "Expected output: judge one case with --stdin.") var expected: String?
    @Option(help: "Comparison of judged output: exact, trimmed, tokens, float:<epsilon>.") var compare: String?
    @Option(help: "Text fed to the program's standard input.") var stdin: String?
    @Option(help: "The job's time budget in milliseconds.") var timeoutMs: Int?
    @Option(help: "How long to wait for each status, in seconds.") var waitSeconds = 120
    @Flag(help: "Ask for the output while the job runs and print it as it arrives (the job's `stream`).") var stream = false
    @Option(help: "Prefix of the job's output stream, as configured on the worker (with --stream).") var outputKeyPrefix = "codebench:output:"
    @Argument(parsing: .postTerminator, help: "The shell command to run (after --).") var command: [String] = []

    func validate() throws {
        if command.isEmpty == (file.isEmpty) {
            throw ValidationError("give either a command after -- or --language and --file")
        }
        if !file.isEmpty && language == nil { throw ValidationError("--file needs --language") }
        if tests != nil && expected != nil { throw ValidationError("--tests and --expected are exclusive") }
    }

    func run() async throws {
        let url = redisUrl ?? ProcessInfo.processInfo.environment["CODEBENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
        let client = RedisClient(configuration: try RedisClientConfiguration(url: url), logger: Logger(label: "codebench.submit"))
        defer { client.close() }
        var job = try jobRequest(id: id ?? "cli-\(UInt64.random(in: 0...UInt64.max))")
        job.stream = stream
        let statusList = statusKeyPrefix + job.id
        _ = try await client.send(RedisCommand("RPUSH", intakeList, job.payload))
        print("pushed job \(job.id) onto \(intakeList); reading \(statusList)")
        if stream {
            try await OutputFollower(client: client, key: outputKeyPrefix + job.id, statusList: statusList, waitSeconds: waitSeconds).run()
        }

        var reader = StatusListReader()
        while true {
            let reply = try await client.send(RedisCommand("BLPOP", statusList, waitSeconds), as: [String]?.self)
            guard let pair = reply, pair.count == 2 else {
                print("no status within \(waitSeconds) s")
                throw ExitCode(3)
            }
            switch reader.read(pair[1]) {
            case .progress(let status):
                print(status.rawValue)
            case .pending:
                continue
            case .unexpected(let element):
                print("(not a status: \(element))")
            case .finished(let report):
                try show(report)
                return
            }
        }
    }

    /// Prints the terminal push; the exit code says how the job ended.
    private func show(_ report: JobReport) throws {
        switch report {
        case .done(let stdout, let stderr, let resultJSON):
            print("done")
            print("--- stdout ---\n\(stdout)", terminator: stdout.hasSuffix("\n") ? "" : "\n")
            print("--- stderr ---\n\(stderr)", terminator: stderr.hasSuffix("\n") ? "" : "\n")
            print("--- result ---\n\(resultJSON)")
            if let cases = report.result?.tests {
                print(JudgeTable.render(cases, passed: report.result?.passed ?? 0))
                if report.result?.verdict != "accepted" { throw ExitCode(1) }
                return
            }
            if report.result?.exitCode != 0 { throw ExitCode(1) }
        case .failed(let reason, let resultJSON):
            print("failed")
            print("reason: \(reason)")
            print("--- result ---\n\(resultJSON)")
            throw ExitCode(2)
        }
    }

    /// The languages of the image on this host ($CODEBENCH_IMAGE_DIR or the cache's current one); the
    /// classic four when there is none (a client machine): the worker's parser has the last word.
    static var languages: JobLanguageCatalog {
        ((try? LanguageRegistry.image(directory: GuestImage.defaultDirectory)) ?? .legacy).jobCatalog
    }

    private func jobRequest(id: String) throws -> JobRequest {
        let workload: JobRequest.Workload
        var files: [JobFile] = []
        if let source = file.first, let language {
            let catalog = Self.languages
            guard let parsed = catalog.language(named: language) else {
                throw ValidationError("unknown language \(language); one of \(catalog.knownList)")
            }
            workload = .program(language: parsed, source: try String(contentsOfFile: source, encoding: .utf8))
            files = try file.dropFirst().map { path in
                JobFile(name: URL(fileURLWithPath: path).lastPathComponent, content: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            }
        } else {
            workload = .shell(command: ShellWords.commandLine(command))
        }
        var job = JobRequest(
            id: id, workload: workload, stdin: Array((stdin ?? "").utf8), timeoutMilliseconds: timeoutMs, files: files,
            arguments: arg)
        job.judge = try judge()
        return job
    }

    /// The cases of --tests or --expected, read by the worker's own parser (so the CLI never spells the
    /// contract's fields), with --compare.
    private func judge() throws -> JobJudge? {
        var fields: [String] = []
        if let tests { fields.append("\"tests\":" + (try String(contentsOfFile: tests, encoding: .utf8))) }
        if let expected {
            let test = JobRequest(id: "-", workload: .shell(command: "-"), judge: JobJudge(tests: [
                JobTestCase(stdin: stdin.map { Array($0.utf8) }, expectedOutput: Array(expected.utf8)),
            ]))
            return try withCompare(JobParser().parse(test.payload).get().judge)
        }
        guard !fields.isEmpty else { return nil }
        switch JobParser().parse("{\"id\":\"-\",\"command\":\"-\"," + fields.joined(separator: ",") + "}") {
        case .success(let job): return try withCompare(job.judge)
        case .failure(let invalid): throw ValidationError("--tests: \(invalid.reason)")
        }
    }

    private func withCompare(_ judge: JobJudge?) throws -> JobJudge? {
        guard var judge, let compare else { return judge }
        guard let mode = Comparison(parsing: compare) else { throw ValidationError("--compare: one of \(Comparison.spellings)") }
        judge.comparison = mode
        return judge
    }
}

/// The per-case table `submit` prints for a judged job.
enum JudgeTable {
    static func render(_ cases: [JobResultRecord.TestRecord], passed: Int) -> String {
        var lines = ["--- tests: \(passed)/\(cases.count) passed ---"]
        let width = max(4, cases.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ count: Int) -> String { text + String(repeating: " ", count: max(0, count - text.count)) }
        lines.append(pad("case", width) + "  " + pad("verdict", 15) + pad("wall ms", 9) + pad("cpu ms", 8) + "message")
        for test in cases {
            lines.append(
                pad(test.name, width) + "  " + pad(test.verdict, 15) + pad(test.wallMilliseconds.map(String.init) ?? "-", 9)
                    + pad(test.cpuMilliseconds.map(String.init) ?? "-", 8) + (test.message ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}
