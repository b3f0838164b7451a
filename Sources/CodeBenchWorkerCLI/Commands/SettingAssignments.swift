import ArgumentParser

/// `--set name=value` options, as `run` and `doctor` take them.
enum SettingAssignments {
    /// Setting name -> value; a later assignment of the same name wins.
    static func parse(_ assignments: [String]) throws -> [String: String] {
        var flags: [String: String] = [:]
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw ValidationError("--set expects name=value, got '\(assignment)'")
            }
            flags[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
        }
        return flags
    }
}
