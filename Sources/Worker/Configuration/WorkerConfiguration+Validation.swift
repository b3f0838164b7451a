import AgentProtocol
import MicroVM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WorkerConfiguration {
    /// Checks every value and their consistency; throws the first problem found.
    public func validate() throws(WorkerConfigurationError) {
        func fail(_ message: String) throws(WorkerConfigurationError) {
            throw WorkerConfigurationError(.inconsistent, message)
        }
        let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"]
        if !schemes.contains(where: { redisURL.hasPrefix($0) }) {
            try fail("redis-url '\(redisURL)' must start with redis://, rediss:// or unix://")
        }
        if intakeLists.isEmpty { try fail("intake-lists must name at least one list") }
        if intakeLists.count > 16 { try fail("intake-lists names \(intakeLists.count) lists; at most 16") }
        for (name, value) in [("invalid-list", invalidList), ("dead-letter-list", deadLetterList), ("namespace", namespace)]
        where value.isEmpty {
            try fail("\(name) must not be empty")
        }
        var seen = Set<String>()
        for list in intakeLists {
            if list.isEmpty { try fail("intake-lists must not contain an empty name") }
            if !seen.insert(list).inserted { try fail("intake-lists names '\(list)' twice") }
        }
        if seen.contains(invalidList) || seen.contains(deadLetterList) || invalidList == deadLetterList {
            try fail("intake-list, invalid-list and dead-letter-list must be three different lists")
        }
        if let workerID, workerID.isEmpty || workerID.contains(where: { $0.isWhitespace }) {
            try fail("worker-id must be non-empty and without spaces")
        }
        if statusTTL < .seconds(1) { try fail("status-ttl-seconds must be at least 1") }
        if heartbeatTTL < .seconds(1) { try fail("heartbeat-ttl-seconds must be at least 1") }
        if maxDeliveries < 1 { try fail("max-deliveries must be at least 1") }
        if maxPayloadBytes < 64 || maxPayloadBytes > 64 << 20 { try fail("max-payload-bytes must be between 64 and 67108864") }
        if let concurrency, concurrency < 1 || concurrency > 1024 { try fail("concurrency must be between 1 and 1024") }
        if warmVMs < 0 || warmVMs > 64 { try fail("warm-vms must be between 0 and 64") }
        if qemuStandby < 0 || qemuStandby > 64 { try fail("qemu-standby must be between 0 and 64") }
        if egressPorts.isEmpty || egressPorts.contains(where: { !(1...65535).contains($0) }) {
            try fail("egress-ports must list ports between 1 and 65535")
        }
        for address in egressAllowedAddresses where !Self.isIPAddress(address) {
            try fail("egress-allow-addresses: '\(address)' is not an IPv4 or IPv6 address")
        }
        if vmMemoryMiB < 64 { try fail("vm-memory-mib must be at least 64") }
        if vmVCPUs < 1 || vmVCPUs > 32 { try fail("vm-vcpus must be between 1 and 32") }
        if bootTimeout <= .zero { try fail("boot-timeout-seconds must be positive") }
        // The store's own rule (a shell reads the path in QEMU's `exec:` migration URI).
        if snapshots, (try? SnapshotStore(root: snapshotDirectory)) == nil {
            try fail("snapshot-dir '\(snapshotDirectory)' must be an absolute path of letters, digits and /._- (or set snapshots=false)")
        }
        if hostTimeoutMargin <= .zero { try fail("host-timeout-margin-seconds must be positive") }
        if drainGracePeriod < .zero { try fail("drain-grace-seconds must not be negative") }
        if outboxCapacity < 1 { try fail("outbox-capacity must be at least 1") }
        if let problem = statusAddress.problem { try fail(problem) }
        if let problem = judge.problem { try fail(problem) }
        try Self.validate(limits: maximumLimits, prefix: "max")
        try Self.validate(limits: defaultLimits, prefix: "default")
        let pairs: [(String, Int, Int)] = [
            ("wall-ms", defaultLimits.wallTimeMilliseconds, maximumLimits.wallTimeMilliseconds),
            ("memory-mib", defaultLimits.memoryBytes >> 20, maximumLimits.memoryBytes >> 20),
            ("processes", defaultLimits.maxProcesses, maximumLimits.maxProcesses),
            ("output-bytes", defaultLimits.maxOutputBytesPerStream, maximumLimits.maxOutputBytesPerStream),
        ]
        for (name, value, maximum) in pairs where value > maximum {
            try fail("default-\(name) (\(value)) is above max-\(name) (\(maximum))")
        }
        // A job limit larger than the VM would be enforced by the guest kernel's OOM killer, not by
        // the job's cgroup, and the verdict would be a crash instead of "memory limit exceeded".
        if maximumLimits.memoryBytes > vmMemoryMiB << 20 {
            try fail("max-memory-mib (\(maximumLimits.memoryBytes >> 20)) is above vm-memory-mib (\(vmMemoryMiB))")
        }
    }

    /// Checks what the configuration needs on this host: the guest image files.
    public func validateHost() throws(WorkerConfigurationError) {
        let image = vmConfiguration(network: false).image
        for path in [image.kernelPath, image.rootfsPath] where access(path, R_OK) != 0 {
            throw WorkerConfigurationError(
                .hostNotReady, "guest image file \(path) is missing or unreadable: run scripts/build-guest-image, or set image-dir")
        }
    }

    /// Each limit within what the guest agent accepts (``RequestRules``), else every job it shapes would be
    /// refused; output at least 1 byte, since 0 would make any output an output-limit failure.
    private static func validate(limits: ResourceLimits, prefix: String) throws(WorkerConfigurationError) {
        typealias Rules = RequestRules
        let mebibyte = 1 << 20
        let checks: [(name: String, value: Int, range: ClosedRange<Int>)] = [
            ("wall-ms", limits.wallTimeMilliseconds, Rules.minimumWallTimeMilliseconds...Rules.maximumWallTimeMilliseconds),
            ("memory-mib", limits.memoryBytes / mebibyte, Rules.minimumMemoryBytes / mebibyte...Rules.maximumMemoryBytes / mebibyte),
            ("processes", limits.maxProcesses, Rules.minimumProcesses...Rules.maximumProcesses),
            ("output-bytes", limits.maxOutputBytesPerStream, max(1, Rules.minimumOutputBytes)...Rules.maximumOutputBytes),
        ]
        for check in checks {
            if check.value < check.range.lowerBound {
                throw WorkerConfigurationError(.inconsistent, "\(prefix)-\(check.name) must be at least \(check.range.lowerBound)")
            }
            if check.value > check.range.upperBound {
                throw WorkerConfigurationError(
                    .inconsistent, "\(prefix)-\(check.name) must be at most \(check.range.upperBound) (the guest agent's limit)")
            }
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
