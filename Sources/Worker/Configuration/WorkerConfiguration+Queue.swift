import JobQueue

extension WorkerConfiguration {
    /// The queue's view of this configuration, for the worker identity `workerID`.
    public func queueConfiguration(workerID: String) -> QueueConfiguration {
        QueueConfiguration(
            intakeList: intakeList, invalidList: invalidList, deadLetterList: deadLetterList, namespace: namespace,
            statusKeyPrefix: statusKeyPrefix, statusTTL: statusTTL, eventsChannelPrefix: eventsChannelPrefix,
            workerID: workerID, heartbeatTTL: heartbeatTTL, maxDeliveries: maxDeliveries, maximumPayloadBytes: maxPayloadBytes)
    }

    /// ``workerID`` when set, else a fresh hostname-pid-random id.
    public func resolvedWorkerID() -> String {
        workerID ?? QueueConfiguration.defaultWorkerID()
    }
}
