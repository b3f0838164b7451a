import ArgumentParser
import Observability

/// Every command logs to stderr at the level named by its `--log-level`; one place, so all of them
/// accept and reject the same names.
func bootstrapLogging(level name: String) throws {
    guard StandardErrorLogging.bootstrap(levelNamed: name) != nil else {
        throw ValidationError("unknown --log-level \(name) (\(StandardErrorLogging.levelNames.joined(separator: ", ")))")
    }
}
