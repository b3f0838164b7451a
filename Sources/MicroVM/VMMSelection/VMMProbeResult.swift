/// Whether one VMM can run VMs on this host, and exactly why (for `doctor` and startup logs).
public struct VMMProbeResult: Sendable, Hashable, CustomStringConvertible {
    /// The VMM checked.
    public var kind: VMMKind
    /// Whether it can boot the image here (for QEMU under TCG at a worker's start: taken as so).
    public var usable: Bool
    /// For a person: what was checked and what failed, in the VMM's own words where there are some.
    public var reason: String
    /// True when the static checks (binary, version, `/dev/kvm`, image) passed but no probe boot ran
    /// (`doctor --no-boot`): `usable` is then false for want of proof, not because something failed.
    public var staticChecksOnly: Bool

    public init(kind: VMMKind, usable: Bool, reason: String, staticChecksOnly: Bool = false) {
        self.kind = kind
        self.usable = usable
        self.reason = reason
        self.staticChecksOnly = staticChecksOnly
    }

    /// The result of passing every static check without booting.
    public static func notBooted(_ kind: VMMKind, present: String) -> VMMProbeResult {
        VMMProbeResult(kind: kind, usable: false, reason: "not booted (static checks only): \(present) are present", staticChecksOnly: true)
    }

    public var description: String { "\(kind): \(usable ? "usable" : "unusable") (\(reason))" }
}
