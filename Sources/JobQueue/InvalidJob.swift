/// Why a payload from the intake list is not a runnable job.
///
/// When ``id`` could be read, the reason is published as `failed` on the job's own status list;
/// otherwise the payload prefix and the reason go to the invalid list (`jobs:invalid`).
public struct InvalidJob: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure (also written to the invalid list as `code`).
    public enum Code: String, Sendable, Equatable {
        /// The payload does not parse as JSON.
        case notJSON = "not_json"
        /// Valid JSON, but not an object.
        case notObject = "not_object"
        case missingID = "missing_id"
        /// Not a string, empty, longer than 256 bytes, or with control characters.
        case invalidID = "invalid_id"
        case payloadTooLarge = "payload_too_large"
        case unknownLanguage = "unknown_language"
        /// Both `command` and `code`.
        case conflictingWorkload = "conflicting_workload"
        /// Neither `command` nor `code`.
        case missingWorkload = "missing_workload"
        /// An optional field of the wrong type or value.
        case invalidField = "invalid_field"
        /// A key appears twice in one object: JSON readers disagree on which one counts (first or last), so the
        /// payload is refused rather than read one way here and another way elsewhere. A duplicate `id` leaves the
        /// job without a readable id.
        case duplicateKey = "duplicate_key"
        /// A value nested deeper than the reader follows (``JobJSONReader/maximumDepth``).
        case nestingTooDeep = "nesting_too_deep"
        /// Another payload with the same id is being run right now (see docs/wire-contract.md, "One id, one job").
        case duplicateIDInFlight = "duplicate_id_in_flight"
        /// The id's status list exists and was not created by this queue: it belongs to someone else.
        case statusListNotOurs = "status_list_not_ours"
    }

    public var code: Code
    /// The job id when it could be read safely (a non-empty string of at most 256 bytes without control characters).
    public var id: String?
    /// A sentence naming the field, e.g. "invalid job: field 'command' must be a string, got number".
    public var reason: String
    /// The payload truncated to ``JobParser/rawPrefixBytes`` (invalid UTF-8 replaced), for the invalid list.
    public var rawPrefix: String
    /// The payload's full size, so a truncated ``rawPrefix`` can be recognised.
    public var payloadBytes: Int

    public init(code: Code, id: String?, reason: String, rawPrefix: String, payloadBytes: Int) {
        self.code = code
        self.id = id
        self.reason = reason
        self.rawPrefix = rawPrefix
        self.payloadBytes = payloadBytes
    }

    public var description: String { reason }
}
