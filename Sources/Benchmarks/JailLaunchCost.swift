import MicroVM
import QEMUDriver
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The jail's launcher alone: host CPU per launch of `codebench-jail` with `/bin/true` in QEMU's
/// place (namespaces, the root's mounts, pivot_root, credentials, two execs), against spawning
/// `/bin/true` directly, the floor of any VMM start, interleaved in one run. A child's CPU is read
/// from this process's `RUSAGE_CHILDREN` once it is reaped; the launcher's includes its own child's.
enum JailLaunchCost {
    /// Milliseconds of CPU per launch, median of `launches`, jailed and direct.
    static func measure(launches: Int) async throws -> (jailed: Double, direct: Double) {
        let directory = try TemporaryDirectory(prefix: "cbjail")
        defer { directory.remove() }
        for name in ["root", "run"] { _ = mkdir(directory.file(name), 0o755) }
        try writeSmallFile(directory.file("rootfs"), "")
        let jail = QEMUJail(cgroup: nil)
        let jailed = jail.launchCommand(in: directory.path, uid: jail.uidRange.upperBound, command: ["/bin/true"])
        var samples = (jailed: [Double](), direct: [Double]())
        for _ in 0..<launches {
            samples.jailed.append(try await cpuMilliseconds(of: jailed.executable, jailed.arguments))
            samples.direct.append(try await cpuMilliseconds(of: "/bin/true", []))
        }
        func median(_ values: [Double]) -> Double { nearestRankPercentile(values.sorted(), 50) ?? 0 }
        return (median(samples.jailed), median(samples.direct))
    }

    private static func cpuMilliseconds(of executable: String, _ arguments: [String]) async throws -> Double {
        let before = CPUSplit.rusageSeconds(RUSAGE_CHILDREN)
        let process = try await VMMProcess.spawn(
            executable: executable, arguments: arguments, environment: QEMUJail.launcherEnvironment,
            stdout: ConsoleRing(capacity: 4096), stderr: ConsoleRing(capacity: 4096))
        let status = await process.waitForExitIgnoringCancellation()
        guard status == .exited(0) else {
            throw VMError(.bootFailed, "\(executable) ended with \(status): \(process.stderr.tail(maxBytes: 1000))")
        }
        return (CPUSplit.rusageSeconds(RUSAGE_CHILDREN) - before) * 1000
    }
}
