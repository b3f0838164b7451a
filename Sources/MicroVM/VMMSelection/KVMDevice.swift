#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether this process can use `/dev/kvm` the way a VMM does: open it read-write and ask
/// `KVM_GET_API_VERSION`, which every KVM since Linux 2.6.22 answers with 12.
public enum KVMDevice {
    /// The only KVM API version there is (`KVM_API_VERSION` in linux/kvm.h).
    public static let expectedAPIVersion: CInt = 12
    /// `_IO(KVMIO, 0x00)` with `KVMIO` = 0xAE.
    static let getAPIVersion: UInt = 0xAE00

    /// Nil when usable, else why not (for a person).
    public static func problem(path: String = "/dev/kvm") -> String? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = errno
            switch reason {
            case ENOENT: return "\(path) is missing (no KVM: enable virtualisation, load kvm_intel/kvm_amd, or use a metal/nested-virt instance)"
            case EACCES, EPERM: return "\(path) is not accessible to uid \(getuid()) (add the user to the kvm group or set an ACL: setfacl -m u:$USER:rw /dev/kvm)"
            default: return "\(path) cannot be opened read-write: \(String(cString: strerror(reason)))"
            }
        }
        defer { close(fd) }
        let version = ioctl(fd, getAPIVersion)
        guard version >= 0 else { return "KVM_GET_API_VERSION on \(path) failed: \(String(cString: strerror(errno)))" }
        guard version == expectedAPIVersion else {
            return "KVM_GET_API_VERSION on \(path) returned \(version), expected \(expectedAPIVersion)"
        }
        return nil
    }
}
