/// The rules for the names and number of the files a job writes into its working directory (`files`).
///
/// Shared by the host's job parser and the guest agent, which trusts nothing it is sent: both refuse
/// exactly the same names, and a refusal reads the same wherever it is made.
public enum WorkFileRules {
    /// Most files one job may carry.
    public static let maximumFiles = 100
    /// Longest name, in UTF-8 bytes (Linux's NAME_MAX is per component; this bounds the whole path).
    public static let maximumNameBytes = 255
    /// Deepest directory nesting of a name (`a/b/c.txt` is 3).
    public static let maximumComponents = 8

    /// Why `name` cannot name a file in the job's working directory, or nil. The sentence follows
    /// `files[<index>].name`, as in `files[2].name must be a relative path`.
    ///
    /// A name is a relative path of plain components: nothing absolute, no `.` or `..` (a name must
    /// never reach outside the directory, nor mean the same file as another name), no empty component,
    /// no NUL or other control character.
    public static func problem(name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > maximumNameBytes { return "must be at most \(maximumNameBytes) bytes" }
        if name.hasPrefix("/") { return "must be a relative path, got '\(name)'" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "must not contain control characters"
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        if components.contains("..") { return "must not contain '..', got '\(name)'" }
        if components.contains(".") || components.contains("") {
            return "must not contain '.' or empty path components, got '\(name)'"
        }
        if components.count > maximumComponents { return "must have at most \(maximumComponents) path components" }
        return nil
    }

    /// The first name that repeats, or names a directory of another file (`a` and `a/b`): both cannot exist.
    public static func clash(names: [String]) -> String? {
        var seen = Set<String>()
        var directories = Set<String>()
        for name in names {
            if seen.contains(name) || directories.contains(name) { return name }
            seen.insert(name)
            var prefix = ""
            for component in name.split(separator: "/").dropLast() {
                prefix += prefix.isEmpty ? String(component) : "/" + component
                if seen.contains(prefix) { return name }
                directories.insert(prefix)
            }
        }
        return nil
    }
}
