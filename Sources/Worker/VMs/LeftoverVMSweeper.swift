import Logging
import MicroVM

/// Kills VMMs (and removes their runtime directories) left behind by a worker process on this host
/// that died without tearing its VMs down (SIGKILL, OOM): its jobs are rerun elsewhere, so these
/// VMs only burn CPU. Runs at start and then periodically, so a surviving sibling cleans up too.
struct LeftoverVMSweeper: Sendable {
    let configuration: WorkerConfiguration
    let logger: Logger
    var interval: Duration = .seconds(5)

    func run() async {
        while !Task.isCancelled {
            let removed = RuntimeDirectory.cleanLeftovers(under: configuration.runtimeDirectory, logger: logger)
            if removed > 0 { logger.notice("removed VMs left by dead worker processes", metadata: ["count": "\(removed)"]) }
            try? await Task.sleep(for: interval)
        }
    }
}
