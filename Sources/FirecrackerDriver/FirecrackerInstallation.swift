#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MicroVM

/// Finding the Firecracker binary and asking its version, for the driver and for `doctor`.
public enum FirecrackerInstallation {
    /// The API spec this driver is written and tested against; older releases are refused.
    public static let minimumVersion = FirecrackerRelease(major: 1, minor: 16, patch: 0)

    /// `name` itself if it contains a slash, else the first executable `name` on `PATH`.
    public static func resolveExecutable(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let searchPath = path ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = directory + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// Runs `<binary> --version` (bounded) and parses `Firecracker v1.16.1`.
    public static func version(of binary: String, timeout: Duration = .seconds(5)) async throws(VersionError) -> FirecrackerRelease {
        let output = ConsoleRing(capacity: 4096)
        let process: VMMProcess
        do {
            process = try await VMMProcess.spawn(executable: binary, arguments: ["--version"], stdout: output, stderr: output)
        } catch {
            throw VersionError(message: "cannot run \(binary) --version: \(error)")
        }
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await process.waitForExit()) != nil }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        process.kill()
        let status = await process.waitForExitIgnoringCancellation()
        await process.closeOutputs(grace: .milliseconds(100))
        let text = output.tail()
        guard finished else { throw VersionError(message: "\(binary) --version did not finish within \(timeout)") }
        guard status == .exited(0) else {
            throw VersionError(message: "\(binary) --version ended with \(status): \(text.prefix(300))")
        }
        guard let release = FirecrackerRelease(versionOutput: text) else {
            throw VersionError(message: "unrecognised \(binary) --version output: \(text.prefix(300))")
        }
        return release
    }

    public struct VersionError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}

/// A Firecracker release number, `v1.16.1`.
public struct FirecrackerRelease: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Finds the first `v<major>.<minor>.<patch>` in `firecracker --version` output
    /// (`Firecracker v1.16.1` followed by other lines) or in the API's `firecracker_version` (`1.16.1`).
    public init?(versionOutput: String) {
        for word in versionOutput.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let text = word.hasPrefix("v") ? word.dropFirst() : word[...]
            let numbers = text.split(separator: "-").first?.split(separator: ".").compactMap { Int($0) } ?? []
            if numbers.count == 3 {
                self.init(major: numbers[0], minor: numbers[1], patch: numbers[2])
                return
            }
        }
        return nil
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    public var description: String { "v\(major).\(minor).\(patch)" }
}
