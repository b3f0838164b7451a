#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MicroVM

/// The snapshot steps of one VM: saving a template into the store, and restoring from it.
extension FirecrackerVM {
    /// The files of a snapshot in the store's directory (beside SnapshotStore's `key`).
    static let storedStateFile = "snapshot.state"
    static let storedMemoryFile = "snapshot.mem"

    /// Pauses the booted, warmed-up template, has Firecracker write its state and memory into the
    /// VM's own directory (the only place a jailed Firecracker can write), and moves both into the
    /// store's partial directory, read-only and owned by us, so no later VMM can alter what every
    /// restored VM maps.
    func saveSnapshot(into partial: String, timeout: Duration) async throws {
        let client = api(timeout: timeout)
        try await client.pause()
        try await client.createSnapshot(
            SnapshotCreateParams(
                snapshotType: .full, snapshotPath: layout.inVMM(layout.snapshotState), memFilePath: layout.inVMM(layout.snapshotMemory)))
        for (source, name) in [(layout.snapshotState, Self.storedStateFile), (layout.snapshotMemory, Self.storedMemoryFile)] {
            var info = stat()
            guard stat(source, &info) == 0, info.st_size > 0 else {
                throw VMError(.bootFailed, "Firecracker reported the snapshot created, but \(source) is missing or empty")
            }
            let destination = partial + "/" + name
            do {
                if try FileSystem.moveOrCopy(source, to: destination) == .copied {
                    logger.warning("copied the snapshot into the store (not on the VM directory's file system)", metadata: ["file": "\(name)"])
                }
            } catch {
                throw VMError(.bootFailed, "cannot store the snapshot: \(error)")
            }
        }
    }

    /// Links the stored snapshot into this VM's directory before Firecracker starts: a jailed
    /// Firecracker sees only its chroot, and a link keeps the files alive for this VM even if the
    /// snapshot is invalidated meanwhile. Across file systems a jailed VM gets a copy; an unjailed
    /// one reads the store in place, since copying the guest's whole memory per VM would cost more
    /// than the cold boot the snapshot saves.
    func linkSnapshot(from directory: String) throws {
        let sources = (state: directory + "/" + Self.storedStateFile, memory: directory + "/" + Self.storedMemoryFile)
        if driver.jailer == nil {
            if link(sources.state, layout.snapshotState) == 0, link(sources.memory, layout.snapshotMemory) == 0 {
                snapshotFiles = (layout.snapshotState, layout.snapshotMemory)
            } else {
                logger.debug("using the snapshot in place (cannot link it)", metadata: ["errno": "\(errno)"])
                snapshotFiles = sources
            }
            return
        }
        for (source, destination) in [(sources.state, layout.snapshotState), (sources.memory, layout.snapshotMemory)] {
            do {
                if try FileSystem.linkOrCopy(source, to: destination, uid: uid ?? geteuid(), gid: driver.jailer?.gid ?? getegid()) == .copied {
                    logger.warning(
                        "copied the snapshot into the jail (the snapshot directory is on another file system)", metadata: ["file": "\(source)"])
                }
            } catch {
                throw VMError(.bootFailed, "cannot link the snapshot into the jail: \(error)")
            }
        }
        snapshotFiles = (layout.snapshotState, layout.snapshotMemory)
    }

    /// `PUT /snapshot/load` on the fresh process, resuming the guest at once. The vsock is moved to
    /// this VM's own socket: the saved path is the template's, which is gone and would otherwise be
    /// shared by every restore.
    func loadSnapshot() async throws {
        guard let snapshotFiles else { throw VMError(.bootFailed, "no snapshot files were linked for this VM") }
        try await api().loadSnapshot(
            SnapshotLoadParams(
                snapshotPath: layout.inVMM(snapshotFiles.state),
                memBackend: MemoryBackend(backendType: .file, backendPath: layout.inVMM(snapshotFiles.memory)),
                trackDirtyPages: nil, resumeVm: true,
                vsockOverride: VsockOverride(udsPath: layout.inVMM(layout.vsockSocket))))
    }

    /// True when the failed restore says the snapshot itself is bad (so it must be made again):
    /// Firecracker refused the load, died after it, the restored agent refused its resume, or the
    /// loaded guest never answered. A failure before the load (a full disk, no free uid) says nothing
    /// about the snapshot.
    var snapshotRefused: Bool {
        guard let step = failedStep, FirecrackerBoot.stepsAfterLoad.contains(step) else { return false }
        if vmmDeath() != nil { return true }
        switch failureCause {
        case let apiError as FirecrackerAPIError:
            return apiError.code == .httpError
        case let vmError as VMError:
            return vmError.code == .agentProtocol || vmError.code == .bootTimeout
        default:
            return false
        }
    }
}
