import JobQueue

extension WorkerConfiguration {
    /// The queue's view of this configuration, for the worker identity `workerID`.
    public func queueConfiguration(workerID: String) -> QueueConfiguration {
        QueueConfiguration(
            intakeList: intakeList, invalidList: invalidList, deadLetterList: deadLetterList, namespace: namespace,
            statusKeyPrefix: statusKeyPrefix, statusTTL: statusTTL, eventsChannelPrefix: eventsChannelPrefix,
            workerID: workerID, heartbeatTTL: heartbeatTTL, maxDeliveries: maxDeliveries,
            // Reaping twice per TTL bounds how long a dead worker's job waits to 1.5 TTL.
            reaperInterval: heartbeatTTL / 2, maximumPayloadBytes: maxPayloadBytes)
    }

    /// ``workerID`` when set, else a fresh hostname-pid-random id.
    public func resolvedWorkerID() -> String {
        workerID ?? QueueConfiguration.defaultWorkerID()
    }
}
