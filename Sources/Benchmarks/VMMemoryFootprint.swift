import Foundation

/// What one QEMU process costs the host's memory now, from `/proc/<pid>/smaps_rollup`: its RSS,
/// its proportional share (PSS: pages shared with other VMs count divided among them) and what is
/// its alone and dirty (Private_Dirty: the guest's own writes, QEMU's heap).
struct VMMemoryFootprint: Sendable {
    var rssKiB: Int
    var pssKiB: Int
    var privateDirtyKiB: Int
    /// PSS of the copy-on-write template's pages this QEMU maps and has not copied (its mappings of
    /// the sealed memfd, less their anonymous, copied pages). Those pages are the memfd's, which
    /// the host holds in full whether VMs map them or not: a host total counts the memfd once instead.
    var templatePssKiB = 0

    init?(pid: pid_t) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return nil }
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, parts[0].hasSuffix(":"), let value = Int(parts[1]) else { continue }
            fields[String(parts[0].dropLast())] = value
        }
        guard let rss = fields["Rss"], let pss = fields["Pss"], let dirty = fields["Private_Dirty"] else { return nil }
        (rssKiB, pssKiB, privateDirtyKiB) = (rss, pss, dirty)
        templatePssKiB = Self.templatePssKiB(pid: pid)
    }

    private static func templatePssKiB(pid: pid_t) -> Int {
        guard let text = readProcFile("/proc/\(pid)/smaps") else { return 0 }
        var total = 0
        var inTemplate = false
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = parts.first else { continue }
            if !first.hasSuffix(":") || first.contains("-") {
                // A mapping's header: `start-end perms offset dev inode [path]`.
                inTemplate = line.contains("/memfd:codebench-template")
            } else if inTemplate, parts.count >= 2, let value = Int(parts[1]) {
                if first == "Pss:" { total += value }
                if first == "Anonymous:" { total -= value }
            }
        }
        return total
    }

    /// The whole of a proc file: Foundation's `String(contentsOfFile:)` stops after one page of a
    /// file whose size reads as 0, and a QEMU's smaps is ~100 KiB.
    private static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count < 16 << 20 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `name  QEMU RSS p50 …  PSS p50 …  Private_Dirty p50 …` over `footprints`, in MiB; with `alive`
    /// (all measured at once) also the sum of PSS: what those VMs cost the host together.
    /// With `templateMemoryKiB` (the sealed memfd copy-on-write VMs map), also the host's total: each
    /// VM's PSS without the template's pages, plus the whole memfd once.
    static func line(_ name: String, _ footprints: [VMMemoryFootprint], alive: Bool, templateMemoryKiB: Int? = nil) -> String {
        func median(_ values: [Int]) -> Int { values.isEmpty ? 0 : values.sorted()[values.count / 2] / 1024 }
        var sum = alive ? String(format: " (sum %d MiB)", footprints.map(\.pssKiB).reduce(0, +) / 1024) : ""
        if alive, let templateMemoryKiB {
            let own = footprints.map { $0.pssKiB - $0.templatePssKiB }.reduce(0, +)
            sum += String(format: " (host: %d MiB = VMs' own %d + template memfd %d)", (own + templateMemoryKiB) / 1024, own / 1024, templateMemoryKiB / 1024)
        }
        return String(
            format: "%-34@ QEMU RSS p50 %d MiB   PSS p50 %d MiB%@   Private_Dirty p50 %d MiB   (%d VMs)",
            name as NSString, median(footprints.map(\.rssKiB)), median(footprints.map(\.pssKiB)), sum as NSString,
            median(footprints.map(\.privateDirtyKiB)), footprints.count)
    }
}
