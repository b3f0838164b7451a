/// One protection between a job's VM and the host, as `codebench-worker doctor` lists it for each
/// VMM (docs/security.md). Built by ``VMMProtections`` from the drivers' configurations, so what
/// doctor says is what the worker would start.
public struct VMMProtection: Sendable, Hashable {
    /// Which protection: one of ``Kind``.
    public var kind: Kind
    public var isOn: Bool
    /// On: what it is, with its figures. Off: why, and what turns it on.
    public var detail: String

    public init(_ kind: Kind, on isOn: Bool, _ detail: String) {
        self.kind = kind
        self.isOn = isOn
        self.detail = detail
    }

    /// The protections every VMM is judged on, in the order doctor lists them.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case separateUID = "separate uid"
        case noCapabilities = "no capabilities"
        case noNewPrivileges = "no_new_privs"
        case mountNamespace = "mount namespace"
        case pidNamespace = "PID namespace"
        case ipcNamespace = "IPC namespace"
        case utsNamespace = "UTS namespace"
        case networkNamespace = "network namespace"
        case ownRoot = "own root"
        case seccomp
        case cgroupMemory = "cgroup memory"
        case cgroupCPU = "cgroup cpu"
        case cgroupPIDs = "cgroup pids"
        case rlimits
        case parentDeathSignal = "parent-death signal"
    }

    /// `on   separate uid          each VM's QEMU runs as …`, `OFF  …` for one that is off.
    public var line: String {
        let name = kind.rawValue
        return (isOn ? "on   " : "OFF  ") + name + String(repeating: " ", count: max(1, 22 - name.count)) + detail
    }
}
