import ArgumentParser
import Foundation
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
        let jobID = id ?? "cli-\(UInt64.random(in: 0...UInt64.max))"
        let payload = try jobPayload(id: jobID)
        let statusList = statusKeyPrefix + jobID
        _ = try await client.send(RedisCommand("RPUSH", intakeList, payload))
        print("pushed job \(jobID) onto \(intakeList); reading \(statusList)")

        var terminal: String?
        var following = 0
        var elements: [String] = []
        while terminal == nil || following > 0 {
            let reply = try await client.send(RedisCommand("BLPOP", statusList, waitSeconds), as: [String]?.self)
            guard let pair = reply, pair.count == 2 else {
                print("no status within \(waitSeconds) s")
                throw ExitCode(3)
            }
            let element = pair[1]
            elements.append(element)
            if terminal != nil {
                following -= 1
            } else if element == "done" || element == "failed" {
                terminal = element
                following = element == "done" ? 3 : 2
            } else {
                print(element)
            }
        }
        print(terminal!)
        if terminal == "done" {
            print("--- stdout ---\n\(elements[elements.count - 3])", terminator: elements[elements.count - 3].hasSuffix("\n") ? "" : "\n")
            print("--- stderr ---\n\(elements[elements.count - 2])", terminator: elements[elements.count - 2].hasSuffix("\n") ? "" : "\n")
        } else {
            print("reason: \(elements[elements.count - 2])")
        }
        let resultJSON = elements[elements.count - 1]
        print("--- result ---\n\(resultJSON)")
        guard terminal == "done" else { throw ExitCode(2) }
        let exitCode = (try? JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any])?["exit_code"] as? Int
        if exitCode != 0 { throw ExitCode(1) }
    }

    private func jobPayload(id: String) throws -> String {
        var job: [String: Any] = ["id": id]
        if let file, let language {
            job["language"] = language
            job["code"] = try String(contentsOfFile: file, encoding: .utf8)
        } else {
            job["command"] = ShellWords.commandLine(command)
        }
        if let stdin { job["stdin"] = stdin }
        if let timeoutMs { job["timeout_ms"] = timeoutMs }
        let data = try JSONSerialization.data(withJSONObject: job, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
