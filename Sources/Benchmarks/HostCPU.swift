import Foundation

/// Busy CPU time of the whole host (every CPU's user, nice, system, irq, softirq and steal time from
/// /proc/stat): the worker, every QEMU with its guest, the jail's launchers, redis-server and the kernel's
/// work for them. A jailed QEMU is reaped by its launcher's PID namespace, not by the worker, so the
/// worker's own rusage cannot see it; the host's counters can. Meaningful on an otherwise idle host.
struct HostCPU {
    let seconds: Double

    static func now() -> HostCPU {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return HostCPU(seconds: 0) }
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice (clock ticks)
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 8 else { return HostCPU(seconds: 0) }
        let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        return HostCPU(seconds: busy / Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// CPU milliseconds per job since `start`.
    static func millisecondsPerJob(since start: HostCPU, jobs: Int) -> Double {
        (now().seconds - start.seconds) * 1000 / Double(max(jobs, 1))
    }
}
