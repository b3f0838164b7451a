/// The command line of `codebench-egress`, parsed by hand: the binary starts once per guest
/// connection, so it stays small and quick (no ArgumentParser, no Foundation).
///
/// ```
/// codebench-egress [--allow-ports 443,80] [--allow-address IP]... [--slots-dir DIR]
///                  [--max-connections N] [--log-file PATH] [--idle-timeout-seconds S]
///                  [--head-timeout-seconds S] [--connect-timeout-seconds S] [--max-bytes N]
///                  [--listeners FD] [--check]
/// ```
/// Each option takes its value as the next argument or after `=` (`--max-bytes=1024`).
public struct EgressArguments: Equatable, Sendable {
    public var options = EgressOptions()
    /// `--check`: validate the arguments and exit instead of serving (for operators; see main.swift).
    public var checkOnly = false
    /// `--listeners FD`: serve, as one long-running process, every VM listener that arrives on the
    /// control socket `FD` (``ListenerService``), instead of one connection on fd 0.
    public var listenerControlFD: CInt?

    public init() {}

    /// Parses `arguments` (without the program name).
    public static func parse(_ arguments: [String]) throws(ArgumentError) -> EgressArguments {
        var result = EgressArguments()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "--check" {
                result.checkOnly = true
                continue
            }
            let name: String
            let value: String
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
                guard argument.hasPrefix("--"), known.contains(argument) else { throw ArgumentError("unknown option \(argument)") }
                guard let next = rest.popFirst() else { throw ArgumentError("\(argument) needs a value") }
                value = next
            }
            try result.apply(name, value)
        }
        return result
    }

    static let known: Set<String> = [
        "--allow-ports", "--allow-address", "--slots-dir", "--max-connections", "--log-file",
        "--idle-timeout-seconds", "--head-timeout-seconds", "--connect-timeout-seconds", "--max-bytes", "--listeners",
    ]

    private mutating func apply(_ name: String, _ value: String) throws(ArgumentError) {
        switch name {
        case "--allow-ports":
            var ports: Set<UInt16> = []
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                guard let port = UInt16(part), port > 0 else { throw ArgumentError("--allow-ports: '\(part)' is not a port") }
                ports.insert(port)
            }
            options.allowedPorts = ports
        case "--allow-address":
            guard let address = IPAddress(value) else { throw ArgumentError("--allow-address: '\(value)' is not an IP address") }
            options.allowedAddresses.insert(address)
        case "--slots-dir":
            guard !value.isEmpty else { throw ArgumentError("--slots-dir needs a directory") }
            options.slotsDirectory = value
        case "--max-connections":
            guard let count = Int(value), (1...4096).contains(count) else {
                throw ArgumentError("--max-connections: '\(value)' is not a number from 1 to 4096")
            }
            options.maxConnections = count
        case "--log-file":
            guard !value.isEmpty else { throw ArgumentError("--log-file needs a path") }
            options.logFile = value
        case "--idle-timeout-seconds": options.idleTimeout = try Self.seconds(name, value)
        case "--head-timeout-seconds": options.headTimeout = try Self.seconds(name, value)
        case "--connect-timeout-seconds": options.connectTimeout = try Self.seconds(name, value)
        case "--listeners":
            guard let fd = CInt(value), fd > 2 else { throw ArgumentError("--listeners: '\(value)' is not a descriptor above 2") }
            listenerControlFD = fd
        case "--max-bytes":
            guard let bytes = Int(value), bytes > 0 else { throw ArgumentError("--max-bytes: '\(value)' is not a positive number") }
            options.maxBytes = bytes
        default:
            throw ArgumentError("unknown option \(name)")
        }
    }

    private static func seconds(_ name: String, _ value: String) throws(ArgumentError) -> Duration {
        guard let seconds = Double(value), seconds > 0, seconds <= 86_400 else {
            throw ArgumentError("\(name): '\(value)' is not a number of seconds from 0 to 86400")
        }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }
}

/// A command-line mistake; the message names the option.
public struct ArgumentError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
