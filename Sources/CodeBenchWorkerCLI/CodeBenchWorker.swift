import ArgumentParser

/// The `codebench-worker` command: only wiring. Each subcommand lives in its own file under Commands/.
@main
struct CodeBenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codebench-worker",
        abstract: "Runs untrusted code jobs from a Redis queue, one fresh microVM per job.",
        subcommands: [
            // Registered by each command's file owner; keep one per line.
            Run.self,
            Submit.self,
            Cancel.self,
            VM.self,
            Doctor.self,
            LanguagesCommand.self,
            Status.self,
            RequeueDead.self,
        ]
    )
}
