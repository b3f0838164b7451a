import Foundation

/// Builds a ``WorkerConfiguration`` from its three sources: flags beat `CODEBENCH_*` environment
/// variables, which beat the JSON config file, which beats the defaults.
public struct WorkerConfigurationLoader: Sendable {
    /// Settings given on the command line, by setting name (`["concurrency": "2"]`).
    public var flags: [String: String]
    /// Usually `ProcessInfo.processInfo.environment`; only `CODEBENCH_*` variables are read.
    public var environment: [String: String]
    /// A JSON object of settings; when nil, `CODEBENCH_CONFIG` names it, if set.
    public var configFile: String?

    public init(flags: [String: String] = [:], environment: [String: String] = [:], configFile: String? = nil) {
        self.flags = flags
        self.environment = environment
        self.configFile = configFile
    }

    /// Loads and validates the configuration; every error says which setting and which source.
    public func load() throws(WorkerConfigurationError) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        let file = configFile ?? environment["CODEBENCH_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let file {
            for (key, value) in try Self.readFile(file).sorted(by: { $0.key < $1.key }) {
                guard let setting = WorkerSetting.named(key) else {
                    throw WorkerConfigurationError(.unknownSetting, "unknown setting '\(key)' in config file \(file)")
                }
                try Self.apply(setting, value, to: &configuration, source: "key '\(key)' of config file \(file)")
            }
        }
        for setting in WorkerSetting.all {
            if let value = environment[setting.environmentVariable] {
                try Self.apply(setting, value, to: &configuration, source: "environment variable \(setting.environmentVariable)")
            }
        }
        for (name, value) in flags.sorted(by: { $0.key < $1.key }) {
            guard let setting = WorkerSetting.named(name) else {
                throw WorkerConfigurationError(.unknownSetting, "unknown setting '\(name)' on the command line")
            }
            try Self.apply(setting, value, to: &configuration, source: "flag --\(setting.name)")
        }
        try configuration.validate()
        return configuration
    }

    private static func apply(
        _ setting: WorkerSetting, _ value: String, to configuration: inout WorkerConfiguration, source: String
    ) throws(WorkerConfigurationError) {
        do {
            try setting.apply(&configuration, value)
        } catch {
            throw WorkerConfigurationError(.invalidValue, "invalid value '\(value)' for \(source): expected \(error.expected)")
        }
    }

    /// The file as setting name -> value text; numbers and booleans are accepted as JSON values.
    private static func readFile(_ path: String) throws(WorkerConfigurationError) -> [String: String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WorkerConfigurationError(.unreadableFile, "cannot read config file \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode([String: ConfigValue].self, from: data).mapValues(\.text)
        } catch {
            throw WorkerConfigurationError(
                .unreadableFile, "config file \(path) must be a JSON object of strings, numbers and booleans: \(error)")
        }
    }
}

/// A scalar JSON value kept as the text a flag would carry.
private struct ConfigValue: Decodable {
    var text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else if let bool = try? container.decode(Bool.self) {
            text = bool ? "true" : "false"
        } else if let int = try? container.decode(Int.self) {
            text = String(int)
        } else {
            text = String(try container.decode(Double.self))
        }
    }
}
