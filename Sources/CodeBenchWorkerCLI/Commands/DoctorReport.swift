import FirecrackerDriver
import Foundation
import MicroVM

/// How `doctor` prints: one line per fact, one block per VMM, reasons verbatim.
enum DoctorReport {
    static func printHostFacts(image: GuestImage) {
        let kvm = KVMDevice.problem().map { "NOT usable: \($0)" } ?? "opens read-write, KVM_GET_API_VERSION = \(KVMDevice.expectedAPIVersion)"
        print("  /dev/kvm: \(kvm)")
        if let problem = DoctorChecks.imageProblem(image) {
            print("  image:    \(problem)")
        } else {
            print("  image:    \(image.kernelPath) (\(size(image.kernelPath))), \(image.rootfsPath) (\(size(image.rootfsPath)))")
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
