/// A VM-level failure: the platform could not run the job (as opposed to the job failing).
/// The message is for a person; `consoleTail` carries the end of the guest console for diagnosis.
public struct VMError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidConfiguration = Code("invalid_configuration")
        public static let imageMissing = Code("image_missing")
        public static let vmmUnavailable = Code("vmm_unavailable")
        public static let bootFailed = Code("boot_failed")
        public static let bootTimeout = Code("boot_timeout")
        public static let agentUnreachable = Code("agent_unreachable")
        public static let agentProtocol = Code("agent_protocol")
        public static let hostTimeout = Code("host_timeout")
        public static let vmCrashed = Code("vm_crashed")
        public static let vmmAPI = Code("vmm_api")
    }

    public var code: Code
    public var message: String
    public var consoleTail: String?

    public init(_ code: Code, _ message: String, consoleTail: String? = nil) {
        self.code = code
        self.message = message
        self.consoleTail = consoleTail
    }

    public var description: String { "\(code): \(message)" }
}
