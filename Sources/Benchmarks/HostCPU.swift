#if canImport(Glibc)
import Glibc
#endif

/// Host CPU time of this process and of its children that have ended and been waited for: in the
/// worker benchmark that is the worker itself and every VMM it started and reaped (QEMU, with the guest
/// and its agent running inside it, and the jail's launcher), which is what a job costs a busy host.
struct HostCPU {
    let seconds: Double

    static func now() -> HostCPU {
        func total(_ who: Int32) -> Double {
            var usage = rusage()
            getrusage(__rusage_who_t(who), &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
        }
        return HostCPU(seconds: total(RUSAGE_SELF.rawValue) + total(RUSAGE_CHILDREN.rawValue))
    }

    /// CPU milliseconds per job since `start`.
    static func millisecondsPerJob(since start: HostCPU, jobs: Int) -> Double {
        (now().seconds - start.seconds) * 1000 / Double(max(jobs, 1))
    }
}
