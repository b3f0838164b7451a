/// How `vm run` and `submit` turn the words after `--` into one shell command line.
enum ShellWords {
    /// One word is a command line as written (`-- 'echo hi; exit 3'`); several are quoted one by one, so
    /// `-- sh -c 'echo hi; exit 4'` runs `sh -c 'echo hi; exit 4'` and not `sh -c echo hi; exit 4`.
    static func commandLine(_ words: [String]) -> String {
        words.count == 1 ? words[0] : words.map(quoted).joined(separator: " ")
    }

    /// Quotes a word for sh unless it is plainly safe, so `echo 'a b'` means what it says.
    static func quoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !word.isEmpty, word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
