#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension GuestImage {
    /// Nil when both files are readable, else what to do about it: every VMM's probe checks this
    /// before it boots anything, so `doctor` says "build the image" rather than "the VMM failed".
    public var problem: String? {
        for path in [kernelPath, rootfsPath] where access(path, R_OK) != 0 {
            return "image not built: \(path) is missing (run scripts/build-guest-image)"
        }
        return nil
    }
}
