import JobQueue
import Languages

extension WorkerConfiguration {
    /// The queue's view of this configuration, for the worker identity `workerID`.
    public func queueConfiguration(workerID: String) -> QueueConfiguration {
        var queue = QueueConfiguration(
            intakeList: intakeList, invalidList: invalidList, deadLetterList: deadLetterList, namespace: namespace,
            statusKeyPrefix: statusKeyPrefix, statusTTL: statusTTL, eventsChannelPrefix: eventsChannelPrefix,
            workerID: workerID, heartbeatTTL: heartbeatTTL, maxDeliveries: maxDeliveries,
            // Reaping twice per TTL bounds how long a dead worker's job waits to 1.5 TTL.
            reaperInterval: heartbeatTTL / 2, maximumPayloadBytes: maxPayloadBytes)
        queue.intakeLists = intakeLists
        queue.languages = languages.jobCatalog
        queue.outputKeyPrefix = outputKeyPrefix
        return queue
    }

    /// ``workerID`` when set, else a fresh hostname-pid-random id.
    public func resolvedWorkerID() -> String {
        workerID ?? QueueConfiguration.defaultWorkerID()
    }
}

extension LanguageRegistry {
    /// The names and aliases the parser accepts: exactly the image's.
    public var jobCatalog: JobLanguageCatalog {
        var aliases: [String: String] = [:]
        for language in languages {
            for alias in language.aliases { aliases[alias] = language.name }
        }
        return JobLanguageCatalog(
            languages: languages.map { JobLanguage(name: $0.name, defaultEntry: $0.source) }, aliases: aliases)
    }
}
