#if canImport(Glibc)
import Glibc
#endif

/// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time because Swift's
/// Glibc module does not declare it. Makes a spawned VMM inherit only the descriptors below `lowest`:
/// whatever else this process has open (Redis connections, other VMs' pipes, a descriptor another
/// thread created between its pipe() and fcntl(FD_CLOEXEC)) must not live on in the VMM.
/// Returns false when the C library lacks it (then only close-on-exec descriptors are closed).
@discardableResult
package func addCloseFrom(_ actions: inout posix_spawn_file_actions_t, lowest: Int32) -> Bool {
    guard let function = closeFromFunction else { return false }
    return function(&actions, lowest) == 0
}

private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

private let closeFromFunction: CloseFrom? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: CloseFrom.self)
}()
