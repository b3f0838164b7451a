import Foundation
import MicroVM

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

/// A job's host CPU split by who spent it, between two readings: this process (the in-process worker
/// and the benchmark's own Redis client), its reaped children (each VMM with its launcher and guest:
/// a jailed QEMU is reaped by its launcher, whose rusage the worker collects when it reaps that), the
/// redis-server, and the rest of the host (the kernel's own threads, anything else running).
struct CPUSplit {
    let host: Double
    let ownProcess: Double
    let reapedChildren: Double
    let redis: Double

    /// User plus system seconds of this process (`RUSAGE_SELF`) or of its reaped children (`RUSAGE_CHILDREN`).
    static func rusageSeconds(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(who.rawValue, &usage)
        return VMMProcess.cpuTime(usage).seconds
    }

    static func now(redisPID: Int32?) -> CPUSplit {
        let redisTicks = redisPID.flatMap { ProcessStat.of(pid: $0)?.cpuTicks } ?? 0
        let redis = Double(redisTicks) / Double(sysconf(Int32(_SC_CLK_TCK)))
        return CPUSplit(
            host: HostCPU.now().seconds, ownProcess: rusageSeconds(RUSAGE_SELF), reapedChildren: rusageSeconds(RUSAGE_CHILDREN), redis: redis)
    }

    /// "N ms = worker process A + VMMs with their guests B + redis-server C + rest D" per job since `start`.
    func perJob(since start: CPUSplit, jobs: Int) -> String {
        let scale = 1000 / Double(max(jobs, 1))
        let (host, own, children, redis) = (
            (host - start.host) * scale, (ownProcess - start.ownProcess) * scale, (reapedChildren - start.reapedChildren) * scale,
            (self.redis - start.redis) * scale
        )
        return String(
            format: "%.0f ms = worker process %.0f + VMMs with launchers and guests %.0f + redis-server %.0f + rest of the host %.0f",
            host, own, children, redis, host - own - children - redis)
    }
}
