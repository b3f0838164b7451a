import ArgumentParser
import Foundation
import JobQueue
import Logging
import RedisClient

/// `codebench-worker submit`: what a platform does. Pushes one job, prints its statuses as they
/// arrive on its status list (BLPOP), then the result; the exit code reflects how it ended.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push one job onto the queue and print its statuses and result as they arrive.",
        discussion: """
            Exit code: 0 when the job is done with exit code 0, 1 when it is done with another exit code \
            or a signal, 2 when it failed, 3 when no terminal status arrived in time.

            Examples:
              codebench-worker submit -- uname -a
              codebench-worker submit --language python --file hello.py --stdin 'input'
            """
    )

    @Option(help: "Redis URL (also CODEBENCH_REDIS_URL).") var redisUrl: String?
    @Option(help: "Job id (default: a random one).") var id: String?
    @Option(help: "List the worker takes jobs from.") var intakeList = "jobs"
    @Option(help: "Prefix of the job's status list, as configured on the worker.") var statusKeyPrefix = ""
    @Option(help: "Language of --file: python, c, cpp, bash.") var language: String?
    @Option(help: "Source file to run with --language.") var file: String?
    @Option(help: "Text fed to the program's standard input.") var stdin: String?
    @Option(help: "The job's time budget in milliseconds.") var timeoutMs: Int?
    @Option(help: "How long to wait for each status, in seconds.") var waitSeconds = 120
    @Argument(parsing: .postTerminator, help: "The shell command to run (after --).") var command: [String] = []

    func validate() throws {
        if command.isEmpty == (file == nil) {
            throw ValidationError("give either a command after -- or --language and --file")
        }
        if file != nil && language == nil { throw ValidationError("--file needs --language") }
    }

    func run() async throws {
        let url = redisUrl ?? ProcessInfo.processInfo.environment["CODEBENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
        let client = RedisClient(configuration: try RedisClientConfiguration(url: url), logger: Logger(label: "codebench.submit"))
        defer { client.close() }
        let job = try jobRequest(id: id ?? "cli-\(UInt64.random(in: 0...UInt64.max))")
        let statusList = statusKeyPrefix + job.id
        _ = try await client.send(RedisCommand("RPUSH", intakeList, job.payload))
        print("pushed job \(job.id) onto \(intakeList); reading \(statusList)")

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
            if report.result?.exitCode != 0 { throw ExitCode(1) }
        case .failed(let reason, let resultJSON):
            print("failed")
            print("reason: \(reason)")
            print("--- result ---\n\(resultJSON)")
            throw ExitCode(2)
        }
    }

    private func jobRequest(id: String) throws -> JobRequest {
        let workload: JobRequest.Workload
        if let file, let language {
            guard let parsed = JobLanguage(named: language) else {
                throw ValidationError("unknown language \(language); one of \(JobLanguage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            workload = .program(language: parsed, source: try String(contentsOfFile: file, encoding: .utf8))
        } else {
            workload = .shell(command: ShellWords.commandLine(command))
        }
        return JobRequest(id: id, workload: workload, stdin: Array((stdin ?? "").utf8), timeoutMilliseconds: timeoutMs)
    }
}
