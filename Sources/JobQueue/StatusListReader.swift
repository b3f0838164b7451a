/// Reads a job's status list element by element, as a platform pops it (`BLPOP <status list>`), and
/// says when the job has ended: the client side of docs/wire-contract.md, "Statuses".
///
/// The element counts of a terminal push live here and in ``JobQueue/finish(_:outcome:)`` only:
/// `done` is followed by stdout, stderr and the result JSON, `failed` by the reason and the result JSON.
public struct StatusListReader: Sendable {
    /// What one element meant.
    public enum Event: Sendable, Equatable {
        /// `received` or `running` (either may repeat on a redelivery).
        case progress(JobStatus)
        /// An element of a terminal push that is not its last: wait for more.
        case pending
        /// The terminal push is complete.
        case finished(JobReport)
        /// Not an element of the contract (another writer's list?): kept out of the report.
        case unexpected(String)
    }

    private var terminal: JobStatus?
    private var trailing: [String] = []

    public init() {}

    /// Elements a terminal status is followed by in its push (stdout, stderr, result; or reason, result).
    public static func trailingElements(after status: JobStatus) -> Int {
        switch status {
        case .done: 3
        case .failed: 2
        case .received, .running: 0
        }
    }

    /// Takes the next element of the list.
    public mutating func read(_ element: String) -> Event {
        guard let terminal else {
            guard let status = JobStatus(rawValue: element) else { return .unexpected(element) }
            if status.isTerminal {
                self.terminal = status
                return .pending
            }
            return .progress(status)
        }
        trailing.append(element)
        guard trailing.count == Self.trailingElements(after: terminal) else { return .pending }
        return .finished(terminal == .done
            ? .done(stdout: trailing[0], stderr: trailing[1], resultJSON: trailing[2])
            : .failed(reason: trailing[0], resultJSON: trailing[1]))
    }
}

/// A job's terminal push as a platform reads it.
public enum JobReport: Sendable, Equatable {
    case done(stdout: String, stderr: String, resultJSON: String)
    case failed(reason: String, resultJSON: String)

    /// The trailing result JSON, decoded (nil when it is not the worker's record).
    public var result: JobResultRecord? {
        let json: String = switch self {
        case .done(_, _, let resultJSON), .failed(_, let resultJSON): resultJSON
        }
        return JobResultRecord(json: json)
    }
}
