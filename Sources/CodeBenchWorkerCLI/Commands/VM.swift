import ArgumentParser

/// `codebench-worker vm`: boot microVMs by hand, outside the queue.
struct VM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a fresh microVM and run something in it (no Redis involved).",
        subcommands: [VMRun.self]
    )
}
