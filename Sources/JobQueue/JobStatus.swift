/// The first element of every push on a job's status list.
public enum JobStatus: String, Sendable, Equatable, CaseIterable {
    /// The worker claimed the job (may repeat when the job is redelivered after a worker died).
    case received
    /// The workload started in a VM (may repeat on a redelivery, like `received`).
    case running
    /// Terminal: followed by stdout, stderr and the result JSON, in the same push.
    case done
    /// Terminal: followed by the reason and the result JSON, in the same push.
    case failed

    /// Terminal statuses are published at most once per job id (see docs/reliability.md).
    public var isTerminal: Bool { self == .done || self == .failed }
}

/// How a job ended, as published by ``JobQueue/finish(_:outcome:)``.
public enum JobOutcome: Sendable, Equatable {
    /// The workload ran (whatever its verdict): pushes `done`, stdout, stderr, result JSON.
    case done(stdout: [UInt8], stderr: [UInt8], result: JobResultRecord)
    /// The workload could not be run: pushes `failed`, reason, result JSON.
    case failed(reason: String, result: JobResultRecord?)

    var status: JobStatus {
        switch self {
        case .done: .done
        case .failed: .failed
        }
    }
}
