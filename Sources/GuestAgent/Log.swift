import Glibc

/// The agent's log: one line per event on stderr, which is /dev/console when the agent is PID 1.
/// The host captures the console, so these lines end up next to the kernel's in the VM log.
enum Log {
    static func info(_ message: String) { emit("codebench-agent: \(message)\n") }

    static func error(_ message: String) { emit("codebench-agent: error: \(message)\n") }

    /// Host-supplied text on the console: printable ASCII only, so it cannot forge or garble log lines.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" })
    }

    private static func emit(_ line: String) {
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
    }

    /// Waits until the console has sent every byte written so far (a no-op when stderr is no tty).
    static func drain() { _ = tcdrain(2) }

    /// Last words of PID 1: also straight to /dev/console in case stderr is not connected to it.
    static func fatal(_ message: String) {
        error(message)
        let console = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC)
        if console >= 0 {
            let bytes = Array("codebench-agent: fatal: \(message)\n".utf8)
            _ = bytes.withUnsafeBytes { write(console, $0.baseAddress!, $0.count) }
            close(console)
        }
    }
}
