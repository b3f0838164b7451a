import Glibc
import Languages

/// Fork servers started ahead of the programs that use them (``RunRequest/prepareForkServers``): one per
/// language of the image that has one, kept for the agent's lifetime.
///
/// Why: a snapshot's template starts them, so in every VM restored from it a Python program, a single
/// run as well as a judge's cases, is forked from an interpreter that has started already, instead of
/// spawning `python3` and having QEMU translate and run the interpreter's start-up in the clone
/// (docs/snapshots.md, "Warm interpreters"). Sharing them is as safe as the judge's per-job server:
/// a server never sees a program's data (``ForkServer``), each clone has its own copy of it, and it
/// runs as root, where runner processes can neither signal nor trace it.
final class WarmForkServers {
    private struct Entry {
        let server: ForkServer
        /// The language's own variables it was started with: a program whose recipe has others must
        /// not get this server's start-up (the interpreter reads some of them only then).
        let languageEnvironment: [String]
    }

    private var entries: [String: Entry] = [:]

    /// Starts the server of each language of `registry` that has one and has none running; `start`
    /// is how a server is started for a language with its variables. A failure is logged: that
    /// language's programs are spawned as before.
    func start(_ registry: LanguageRegistry, using start: (LanguageDefinition, [String]) -> ForkServer?) {
        for definition in registry.languages where definition.forkServer != nil {
            if let running = entries[definition.name], running.server.usable { continue }
            // A variable naming the job's work directory or entry cannot be known before the job comes.
            guard !definition.environment.values.contains(where: { $0.contains("{") }) else { continue }
            // As a request's recipe lists them: ``server(for:matching:)`` compares the two.
            let environment = definition.recipe(entry: definition.source, workDirectory: "").environment
            guard let server = start(definition, environment) else { continue }
            entries[definition.name] = Entry(server: server, languageEnvironment: environment)
        }
    }

    /// The running server of the language `name`; with `languageEnvironment`, only when it was started
    /// with those variables.
    func server(for name: String, matching languageEnvironment: [String]? = nil) -> ForkServer? {
        guard let entry = entries[name], entry.server.usable else { return nil }
        if let languageEnvironment, entry.languageEnvironment != languageEnvironment { return nil }
        return entry.server
    }

    /// Returns once every server sleeps in its recvmsg (at most 2 s each). Why: a template is saved as
    /// soon as the request that started them is answered, and a server still on its way back there
    /// would finish that in every clone, under TCG, in the middle of the clone's job.
    func waitUntilIdle() {
        for (name, entry) in entries where Posix.waitUntilSleeping(entry.server.pid, deadline: Posix.monotonicMilliseconds() + 2000) == .timedOut {
            Log.error("\(name)'s fork server was not waiting for a program after 2 s")
        }
    }

    /// Ends the server of `name` and forgets it.
    func retire(_ name: String) {
        entries.removeValue(forKey: name)?.server.retire()
    }
}
