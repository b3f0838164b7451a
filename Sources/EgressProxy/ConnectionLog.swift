import Glibc

/// The optional per-connection log: one line per connection, appended to a file the operator names.
///
/// The guest controls what gets logged (host names, how many connections it opens), so the file is
/// bounded (nothing is written once it holds `maxBytes`), lines are cut short and stripped of anything
/// but printable ASCII, and the file is opened without following symlinks, without blocking (a FIFO
/// cannot stall the proxy) and only if it is a regular file. Logging never fails a connection.
struct ConnectionLog {
    let path: String
    let maxBytes: Int

    static let maxLineBytes = 512

    func append(_ line: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return }
        let bytes = Self.sanitized(line)
        // Concurrent proxies may each pass this check at once; the overshoot is bounded by
        // max-connections lines, which is fine for a size cap meant to stop a flood.
        guard Int(status.st_size) + bytes.count <= maxBytes else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    static func sanitized(_ line: String) -> [UInt8] {
        var bytes = line.utf8.prefix(maxLineBytes - 1).map { (0x20..<0x7F).contains($0) ? $0 : UInt8(ascii: "?") }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Now in UTC, as `2025-01-31T12:34:56Z`.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var text = [CChar](repeating: 0, count: 32)
        let count = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
