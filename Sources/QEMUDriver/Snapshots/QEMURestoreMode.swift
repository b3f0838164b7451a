extension QEMUDriver {
    /// How a VM is restored from its snapshot (docs/snapshots.md, "Restore modes").
    public enum RestoreMode: String, Sendable, Hashable, CaseIterable {
        /// QEMU reads the guest's whole memory from the migration stream (`-incoming`), a ~55 MB copy
        /// per VM into memory of its own.
        case streamed
        /// The template's memory stays in a sealed memfd (`F_SEAL_WRITE`, ...) that each VM, jailed or
        /// not, maps privately (`memory-backend-file,share=off` on `/proc/self/fd/3`: copy-on-write);
        /// QEMU loads only device state (~54 KB, `x-ignore-shared`). Pages a VM never writes stay
        /// shared by every VM of the process; the snapshot keeps the RAM on disk as its `memory` file.
        case copyOnWrite = "copy-on-write"
    }
}

extension QEMUDriver.Configuration {
    /// The mode VMs are actually restored in: ``restoreMode``, jailed or not. (Before the template's
    /// RAM was a sealed memfd, a jailed QEMU 7.2 could not map it and restored `streamed`; the
    /// property stays so that callers and the worker's start log keep one place to ask.)
    public var effectiveRestoreMode: QEMUDriver.RestoreMode {
        restoreMode
    }
}
