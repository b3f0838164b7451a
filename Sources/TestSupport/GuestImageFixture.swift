import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The cached guest image for tests and benchmarks that boot real VMs.
public enum GuestImageFixture {
    /// Why the image cannot be used, or nil when `vmlinux` and `rootfs.ext4` are there.
    public static func problem(_ image: GuestImage = .at()) -> String? {
        for path in [image.kernelPath, image.rootfsPath] where access(path, R_OK) != 0 {
            return "the guest image is missing (\(path) not found): build it with scripts/build-guest-image (CI builds it before the tests)"
        }
        return nil
    }

    /// The image; throws with instructions when it has not been built. Tests call this so a missing
    /// image fails them loudly instead of skipping them.
    public static func require(_ image: GuestImage = .at()) throws -> GuestImage {
        if let problem = problem(image) { throw GuestImageMissing(message: problem) }
        return image
    }
}

/// Thrown by ``GuestImageFixture/require(_:)``.
public struct GuestImageMissing: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
