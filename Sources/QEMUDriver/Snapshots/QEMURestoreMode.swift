extension QEMUDriver {
    /// How a VM is restored from its snapshot (docs/snapshots.md, "Restore modes").
    public enum RestoreMode: String, Sendable, Hashable, CaseIterable {
        /// QEMU reads the guest's whole memory from the migration stream (`-incoming`), a ~55 MB copy
        /// per VM into memory of its own.
        case streamed
        /// The template's memory stays in an immutable file of the snapshot; each VM maps it privately
        /// (`memory-backend-file,share=off`: copy-on-write) and loads only device state (~54 KB,
        /// `x-ignore-shared`). Pages a VM never writes stay shared, in the page cache, by every VM.
        ///
        /// Unjailed only on QEMU 7.2: a jailed VM is restored `streamed` (see ``Configuration/effectiveRestoreMode``).
        case copyOnWrite = "copy-on-write"
    }
}

extension QEMUDriver.Configuration {
    /// The mode VMs are actually restored in. A jailed QEMU restores `streamed`, whatever
    /// ``restoreMode`` says: QEMU 7.2 opens a `memory-backend-file` read-write even for a private
    /// mapping (its `readonly=on` turns guest RAM into ROM, and the guest cannot boot), so the jailed
    /// uid would need write access to the file every later VM maps. Unjailed QEMU is root, which
    /// can open any file anyway; it maps the file privately and never writes it.
    public var effectiveRestoreMode: QEMUDriver.RestoreMode {
        jail == nil ? restoreMode : .streamed
    }
}
