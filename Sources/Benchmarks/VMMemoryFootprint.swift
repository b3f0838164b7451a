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
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8) else { return 0 }
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
