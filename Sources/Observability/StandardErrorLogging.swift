import Logging

/// How every executable of the project logs: to stderr, at the level its `--log-level` names, so all
/// of them accept and refuse the same names.
public enum StandardErrorLogging {
    /// The level names a `--log-level` accepts.
    public static let levelNames = Logger.Level.allCases.map(\.rawValue)

    /// Bootstraps the process's logging once; nil when `name` is not a level (the caller refuses it as
    /// it refuses any bad argument), otherwise the level.
    @discardableResult
    public static func bootstrap(levelNamed name: String) -> Logger.Level? {
        guard let level = Logger.Level(rawValue: name) else { return nil }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return level
    }
}
