#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the host has, for sizing the default concurrency.
public struct HostResources: Sendable, Equatable {
    public var cores: Int
    public var memoryBytes: Int

    public init(cores: Int, memoryBytes: Int) {
        self.cores = cores
        self.memoryBytes = memoryBytes
    }

    /// Online cores and physical memory, read once.
    public static let current: HostResources = {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        return HostResources(cores: cores, memoryBytes: max(0, pages) * max(0, pageSize))
    }()
}
