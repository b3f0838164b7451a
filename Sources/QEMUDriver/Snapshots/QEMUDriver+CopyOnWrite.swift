import FoundationEssentials
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The QMP side of copy-on-write restores (``QEMUDriver/RestoreMode/copyOnWrite``).
extension QEMUDriver {
    /// The migration capability that leaves shared RAM blocks (the template's memory file) out of
    /// the stream on save, and expects them absent on load.
    static let ignoreSharedCapability = #"{"capabilities":[{"capability":"x-ignore-shared","state":true}]}"#

    /// Loads the device state into a VM started with `-incoming defer` and waits until it runs.
    ///
    /// The state is QEMU's inherited descriptor 4 (``QEMUTemplateMemory/stateFD``), jailed or not:
    /// `fd:` needs neither a shell (`exec:`, which the jail's `-sandbox spawn=deny` forbids) nor a
    /// path. QEMU 7.2 reads a numeric `fd:` name as a descriptor it already holds.
    func loadDeferredState(_ vm: QEMUVM) async throws {
        guard let process = vm.resources.process, let directory = vm.resources.runtimeDirectory else {
            throw VMError(.bootFailed, "QEMU was not started for a copy-on-write restore")
        }
        let jailed = configuration.jail != nil
        let qmpSocket = try directory.socketPath((jailed ? QEMUJailDirectory.sockets + "/" : "") + Self.qmpSocketName)
        let uri = "fd:\(QEMUTemplateMemory.stateFD)"
        let timeout = vm.remaining
        try await Self.untilExit(of: process) {
            try await Self.withDeadline(timeout, what: "loading the VM snapshot") {
                try await Self.withQMP(socketPath: qmpSocket) { qmp in
                    _ = try await qmp.execute("migrate-set-capabilities", arguments: Self.ignoreSharedCapability)
                    _ = try await qmp.execute("migrate-incoming", arguments: #"{"uri":"\#(uri)"}"#)
                    // A failed load makes QEMU exit (untilExit); a good one runs the guest, saved
                    // running, and says so with RESUME: no polling interval adds to the start.
                    try await qmp.waitForEvent("RESUME")
                }
            }
        }
    }

    /// Connects to a QMP socket QEMU may not have created (or be listening on) yet; the caller's
    /// deadline bounds the retries. `body` runs once.
    private static func withQMP(socketPath: String, _ body: (inout QMPClient.Session) async throws -> Void) async throws {
        while true {
            var connected = false
            do {
                return try await QMPClient.withConnection(socketPath: socketPath) { qmp in
                    connected = true
                    try await body(&qmp)
                }
            } catch where !connected && !(error is CancellationError) {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }
}
