import ArgumentParser
import Logging

/// Every command logs to stderr at the level named by its `--log-level`; one place, so all of them
/// accept and reject the same names.
func bootstrapLogging(level name: String) throws {
    guard let level = Logger.Level(rawValue: name) else {
        throw ValidationError("unknown --log-level \(name) (trace, debug, info, notice, warning, error, critical)")
    }
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
