import Foundation

/// A fresh directory under /tmp for one test, removed by ``remove()``. The name is short on purpose:
/// tests put Unix sockets in it, and a socket path must stay under 108 bytes.
public struct TemporaryDirectory: Sendable {
    public let path: String

    /// - Parameter prefix: the directory's name before its random part, so leftovers say whose they are.
    public init(prefix: String = "cbt") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw TemporaryDirectoryError(message: "mkdtemp /tmp/\(prefix)-XXXXXX failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    /// The path of `name` inside the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name` (replacing it) and sets its mode.
    public func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
        chmod(file(name), mode_t(mode))
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

public struct TemporaryDirectoryError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
