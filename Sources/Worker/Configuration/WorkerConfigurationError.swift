/// Why a worker configuration was refused. The message names the setting and where it came from,
/// so an operator can fix it without reading code.
public struct WorkerConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A value that does not parse (e.g. `concurrency=abc`).
        public static let invalidValue = Code("invalid_value")
        /// A key nobody knows (a typo in the config file or in `--set`).
        public static let unknownSetting = Code("unknown_setting")
        /// The config file is missing or not a JSON object.
        public static let unreadableFile = Code("unreadable_file")
        /// Values that parse but do not make sense together (default above maximum, ...).
        public static let inconsistent = Code("inconsistent")
        /// The host lacks something the configuration needs (the guest image).
        public static let hostNotReady = Code("host_not_ready")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "configuration \(code): \(message)" }
}
