import Foundation
import MicroVM
import QEMUDriver

/// How `doctor` prints: one line per fact, one block per VMM, reasons verbatim.
enum DoctorReport {
    static func printHostFacts(image: GuestImage) {
        let kvm = KVMDevice.problem().map { "NOT usable: \($0)" } ?? "opens read-write, KVM_GET_API_VERSION = \(KVMDevice.expectedAPIVersion)"
        print("  /dev/kvm: \(kvm)")
        if let problem = image.problem {
            print("  image:    \(problem)")
        } else {
            print("  image:    \(image.kernelPath) (\(size(image.kernelPath))), \(image.rootfsPath) (\(size(image.rootfsPath)))")
        }
        // Only jobs that ask for network on a worker with allow-network need it (QEMU only).
        let egress = QEMUDriver.Configuration().resolvedEgressProxyPath
        let found = FileManager.default.isExecutableFile(atPath: egress)
        print("  egress:   \(egress) \(found ? "present (network jobs go out through it, QEMU only)" : "MISSING: network jobs fail (swift build -c release builds it)")")
        // Every jailed QEMU (qemu-jail=on, the default) starts through it.
        let launcher = QEMUJail().resolvedLauncherPath
        let launcherFound = FileManager.default.isExecutableFile(atPath: launcher)
        print("  jail:     \(launcher) \(launcherFound ? "present (starts every jailed QEMU)" : "MISSING: a jailed QEMU cannot start (swift build -c release builds it)")")
    }

    /// What the snapshot directory holds: made on a VM's first start, so "none yet" is normal before any job.
    static func printSnapshots(directory: String) {
        guard let store = try? SnapshotStore(root: directory) else {
            print("  snapshots: \(directory) is not a usable snapshot directory (absolute, [A-Za-z0-9/._-])")
            print("")
            return
        }
        let entries = store.entries()
        let stale = entries.filter(\.stale)
        let megabytes = entries.reduce(0) { $0 + $1.bytes } >> 20
        if entries.isEmpty {
            print("  snapshots: none yet in \(directory) (the first VM makes one)")
        } else {
            print("  snapshots: \(entries.count) in \(directory), \(megabytes) MiB; \(stale.count) stale (pruned when the next one is made)")
            for entry in entries {
                print("    \(entry.name)  \(entry.format)  \(entry.bytes >> 20) MiB\(entry.stale ? "  stale" : "")")
            }
        }
        print("")
    }

    static func printProbe(_ result: VMMProbeResult) {
        let name = result.kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
        print("  \(name) \(result.usable ? "usable  " : "UNUSABLE") \(result.reason.replacingOccurrences(of: "\n", with: "\n               "))")
    }

    private static func size(_ path: String) -> String {
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        return bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
