#if canImport(Glibc)
import Glibc
#endif

/// Names a snapshot by everything that shapes the saved machine. A snapshot loaded into a QEMU with
/// other devices or memory, another kernel, root filesystem or QEMU build fails to load or, worse,
/// loads and misbehaves; so any change to those gives a new key and a new snapshot.
///
/// `text` is the whole description, stored beside the snapshot and compared on lookup, so a hash
/// collision of `name` can never hand out the wrong machine.
struct SnapshotKey: Sendable, Hashable {
    static let format = "codebench-qemu-snapshot 1"
    /// Replaces the per-VM agent socket path, the one argument that differs between VMs.
    static let socketPlaceholder = "@AGENT_SOCKET@"

    let text: String
    /// 32 hexadecimal digits derived from `text`: the snapshot's directory name.
    let name: String

    /// - Parameter arguments: the restored VM's QEMU arguments without `-incoming`.
    init(binaryPath: String, kernelPath: String, rootfsPath: String, arguments: [String], agentSocketPath: String) {
        var lines = [Self.format]
        lines.append("qemu \(Self.identity(of: binaryPath))")
        lines.append("kernel \(Self.identity(of: kernelPath))")
        lines.append("rootfs \(Self.identity(of: rootfsPath))")
        lines += arguments.map { "arg " + $0.replacing(agentSocketPath, with: Self.socketPlaceholder) }
        text = lines.joined(separator: "\n") + "\n"
        name = Self.hex(Self.fnv1a(text, basis: 0xcbf2_9ce4_8422_2325)) + Self.hex(Self.fnv1a(text, basis: 0x8422_2325_cbf2_9ce4))
    }

    /// Path, size, modification time and inode: a rebuilt or replaced file changes at least one.
    static func identity(of path: String) -> String {
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
