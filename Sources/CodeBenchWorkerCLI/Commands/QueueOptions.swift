import ArgumentParser
import Foundation
import JobQueue
import Logging
import Worker

/// The options of the operator commands that read the queue (`status`, `requeue-dead`): the same settings sources as
/// `run` (flags, `CODEBENCH_*`, `--config`), so they look at the keys the workers use.
struct QueueOptions: ParsableArguments {
    @Option(help: "JSON object of settings, as for run (also CODEBENCH_CONFIG).") var config: String?
    @Option(help: "Redis URL (also CODEBENCH_REDIS_URL).") var redisUrl: String?
    @Option(name: .customLong("set"), help: "Any setting of run, as name=value (repeatable): namespace, intake-list, ...")
    var settings: [String] = []

    /// A queue on the workers' keys; its worker id is this command's own, so it never acts as one of them.
    func queue(command: String, logger: Logger) throws -> JobQueue {
        var flags = try SettingAssignments.parse(settings)
        flags["redis-url"] = redisUrl ?? flags["redis-url"]
        let configuration = try WorkerConfigurationLoader(
            flags: flags, environment: ProcessInfo.processInfo.environment, configFile: config
        ).load()
        let workerID = "\(command)-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            return try JobQueue(
                redisURL: configuration.redisURL, clientName: "codebench-worker-\(command)", reconnectAttempts: 2,
                configuration: configuration.queueConfiguration(workerID: workerID), logger: logger)
        } catch {
            throw ValidationError("redis-url '\(configuration.redisURL)': \(error.message)")
        }
    }
}
