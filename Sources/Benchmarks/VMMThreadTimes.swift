import Foundation
import MicroVM

/// How far one QEMU's threads have run, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds, where
/// `stat`'s clock ticks would be 10 ms coarse).
///
/// Why: a restored VM's host CPU is QEMU's start, its restore, its I/O and its exit on the main
/// thread, and the guest on the vCPU thread, which under TCG is mostly translating guest code that
/// every clone runs for the first time. Copy-on-write changes only the first part (no stream to
/// load), so the split says how much of a job a restore mode can save at all.
struct VMMThreadTimes: Sendable {
    /// The vCPU thread: the thread other than the main one that has run longest. With one vCPU and a
    /// finished job no other thread (QEMU's RCU and I/O workers) comes near it.
    var vcpu: Duration
    /// The main thread and every other thread.
    var rest: Duration

    init?(pid: pid_t) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var main: Duration = .zero
        var others: [Duration] = []
        for entry in entries {
            guard let tid = pid_t(entry), let text = readSmallFile("/proc/\(pid)/task/\(tid)/schedstat"),
                let field = text.split(separator: " ").first, let nanoseconds = Int64(field)
            else { continue }
            if tid == pid { main = .nanoseconds(nanoseconds) } else { others.append(.nanoseconds(nanoseconds)) }
        }
        guard let longest = others.max() else { return nil }
        vcpu = longest
        rest = others.reduce(main, +) - longest
    }
}
