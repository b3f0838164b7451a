#if canImport(Glibc)
import Glibc
#endif

/// Names a VM snapshot by everything that shapes the saved machine. A snapshot loaded into a VMM with
/// other devices or memory, another kernel, root filesystem or VMM build fails to load or, worse,
/// loads and misbehaves; so any change to those gives a new key and a new snapshot.
///
/// `text` is the whole description, stored beside the snapshot and compared on lookup, so a hash
/// collision of `name` can never hand out the wrong machine.
public struct SnapshotKey: Sendable, Hashable {
    /// Stands for the per-VM agent socket path in machine arguments, the one thing that differs between VMs.
    public static let socketPlaceholder = "@AGENT_SOCKET@"

    public let text: String
    /// 32 hexadecimal digits derived from `text`: the snapshot's directory name.
    public let name: String

    /// - Parameters:
    ///   - format: names the driver and its snapshot format version, e.g. `codebench-qemu-snapshot 1`.
    ///   - files: the VMM binary, kernel and root filesystem; each is identified by ``identity(of:)``.
    ///   - machine: the VMM's description of the machine (arguments, or configuration lines).
    public init(format: String, files: [(role: String, path: String)], machine: [String]) {
        var lines = [format]
        lines += files.map { "file \($0.role) \(Self.identity(of: $0.path))" }
        lines += machine.map { "machine " + $0 }
        text = lines.joined(separator: "\n") + "\n"
        name = Self.hex(Self.fnv1a(text, basis: 0xcbf2_9ce4_8422_2325)) + Self.hex(Self.fnv1a(text, basis: 0x8422_2325_cbf2_9ce4))
    }

    /// Whether a key's text names a file that has since changed or gone: such a snapshot can never be
    /// looked up again (every new key names the file as it is now), so it is only taking space.
    public static func isStale(_ text: String) -> Bool {
        for line in text.split(separator: "\n") where line.hasPrefix("file ") {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3 else { return true }
            let identity = String(fields[2])
            guard let end = identity.ranges(of: " size=").last ?? identity.ranges(of: " missing").last else { return true }
            if Self.identity(of: String(identity[..<end.lowerBound])) != identity { return true }
        }
        return false
    }

    /// Path, size, modification time and inode: a rebuilt or replaced file changes at least one.
    public static func identity(of path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(path) missing" }
        return "\(path) size=\(info.st_size) mtime=\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) inode=\(info.st_ino)"
    }

    private static func fnv1a(_ text: String, basis: UInt64) -> UInt64 {
        var hash = basis
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
