import MicroVM

#if canImport(Glibc)
import Glibc
#endif

extension QEMUDriver {
    /// The egress proxy of this driver's jailed VMs; nil when QEMU runs unjailed (then each guest
    /// connection starts a proxy process of its own, docs/network.md).
    var egressProxyHost: EgressProxyHost? {
        guard let jail = configuration.jail else { return nil }
        return EgressProxyHost.shared(
            EgressProxyHost.Settings(
                executable: configuration.resolvedEgressProxyPath, setprivPath: jail.setprivPath,
                uid: jail.egressProxyUID, gid: jail.egressProxyGID,
                arguments: ["--allow-ports", configuration.egressPorts.map(String.init).joined(separator: ",")]
                    + configuration.egressAllowedAddresses.flatMap { ["--allow-address", $0] }))
    }

    /// Makes sure VMs with network can reach their proxy, for a worker that allows network to call
    /// at start: jailed, the one proxy process runs (started now if needed); unjailed, the proxy
    /// binary is there. Throws what is missing.
    public func prepareNetwork() async throws {
        let proxy = configuration.resolvedEgressProxyPath
        guard access(proxy, X_OK) == 0 else {
            throw VMError(.invalidConfiguration, "jobs with network need the egress proxy, and \(proxy) is not an executable file")
        }
        try await egressProxyHost?.ensureRunning()
    }
}
