import MicroVM

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One VMM's probe result kept in a small file for the rest of this host boot, so that short-lived
/// processes (`vm run`) do not pay a probe's timeout every time. It is valid only for the same host
/// boot (`/proc/sys/kernel/random/boot_id`) and the same `files` (path and mtime: the VMM binary and
/// the kernel), since a reboot, an upgrade or a rebuilt image can change the outcome.
struct VMMProbeMemo {
    let path: String
    let kind: VMMKind
    private let key: String

    init(directory: String, kind: VMMKind, files: [String]) {
        self.path = directory + "/vmm-probe-" + kind.rawValue
        self.kind = kind
        self.key = ([Self.readText("/proc/sys/kernel/random/boot_id") ?? "?"] + files.flatMap { [$0, Self.mtime($0)] })
            .joined(separator: " ")
    }

    /// The remembered result, if its key still holds.
    func recall() -> VMMProbeResult? {
        guard let text = Self.readText(path) else { return nil }
        let lines = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 3, lines[0] == key, let usable = Bool(lines[1]) else { return nil }
        return VMMProbeResult(kind: kind, usable: usable, reason: lines[2])
    }

    /// Best effort: a directory that cannot be written only means the next process probes again.
    func remember(_ result: VMMProbeResult) {
        guard let file = fopen(path, "w") else { return }
        let reason = result.reason.split(separator: "\n").joined(separator: " ")
        fputs("\(key)\n\(result.usable)\n\(reason)\n", file)
        fclose(file)
    }

    private static func mtime(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "?" }
        return "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 1024)
        while text.utf8.count < 16 << 10, fgets(&buffer, Int32(buffer.count), file) != nil {
            text += buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        while text.hasSuffix("\n") || text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
