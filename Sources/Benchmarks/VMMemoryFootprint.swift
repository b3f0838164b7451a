import Foundation

/// What one QEMU process costs the host's memory now, from `/proc/<pid>/smaps_rollup`: its RSS,
/// its proportional share (PSS: pages shared with other VMs count divided among them) and what is
/// its alone and dirty (Private_Dirty: the guest's own writes, QEMU's heap).
struct VMMemoryFootprint: Sendable {
    var rssKiB: Int
    var pssKiB: Int
    var privateDirtyKiB: Int

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
    }

    /// `name  QEMU RSS p50 …  PSS p50 …  Private_Dirty p50 …` over `footprints`, in MiB; with `alive`
    /// (all measured at once) also the sum of PSS: what those VMs cost the host together.
    static func line(_ name: String, _ footprints: [VMMemoryFootprint], alive: Bool) -> String {
        func median(_ values: [Int]) -> Int { values.isEmpty ? 0 : values.sorted()[values.count / 2] / 1024 }
        let sum = alive ? String(format: " (sum %d MiB)", footprints.map(\.pssKiB).reduce(0, +) / 1024) : ""
        return String(
            format: "%-34@ QEMU RSS p50 %d MiB   PSS p50 %d MiB%@   Private_Dirty p50 %d MiB   (%d VMs)",
            name as NSString, median(footprints.map(\.rssKiB)), median(footprints.map(\.pssKiB)), sum as NSString,
            median(footprints.map(\.privateDirtyKiB)), footprints.count)
    }
}
