#if canImport(Glibc)
import Glibc
#endif

/// The worker's companion executables (`codebench-egress`, `codebench-jail`) live beside its own
/// executable: `swift build` puts every product of the package in one directory, and so does an install.
enum CompanionExecutable {
    /// `name` in this process's executable's directory, or bare `name` if that cannot be read.
    static func path(_ name: String) -> String {
        directory.map { $0 + "/" + name } ?? name
    }

    /// Read once per process: the executable does not move.
    private static let directory: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let executable = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    }()
}
