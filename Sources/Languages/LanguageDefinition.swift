import FoundationEssentials

/// One entry of guest/languages.json: how the guest builds and runs a program in a language. The image
/// build installs `packages` and adds `version`; docs/languages.md describes every field.
public struct LanguageDefinition: Codable, Sendable, Equatable {
    public var name: String
    /// Other names a job may use, lowercased.
    public var aliases: [String]
    /// Debian packages that provide the language (the image build installs them).
    public var packages: [String]
    /// Run in the image at build time; its first non-empty output line is ``version``.
    public var versionCommand: [String]
    /// What ``versionCommand`` printed in the image; nil in the repository's registry.
    public var version: String?
    /// The file a job's `code` is written to, and the entry of a project that names none.
    public var source: String
    /// A pattern whose first group, found in `code`, names the source file instead (Java's public class
    /// must live in a file of its name); the extension stays the one of ``source``.
    public var sourceNameFrom: String?
    /// Endings of the other files of a job compiled together with the entry.
    public var sourceExtensions: [String]
    /// Nil for languages that only run. Placeholders: see ``LanguageRecipe``.
    public var compile: [String]?
    public var run: [String]
    /// The run command when the program has other files (Python must then find modules next to its entry).
    public var runWithModules: [String]?
    /// A warm interpreter judge cases are forked from instead of running ``run`` (guest/fork-servers/):
    /// it must give the program what ``run`` (or ``runWithModules``) would. Nil: every case is spawned.
    public var forkServer: [String]?
    /// Run once in the image at build time, after the packages and the registry are in place: work
    /// every job would otherwise repeat, done ahead (TypeScript's compiler saved as a V8 startup
    /// snapshot, guest/language-setup/). Nil: nothing to do.
    public var imageSetup: [String]?
    /// Variables the compile and run steps get on top of the agent's; values may use `{work}`.
    public var environment: [String: String]
    public var limits: LanguageLimits
    public var hello: HelloWorld

    public var compiles: Bool { compile != nil }

    public init(
        name: String, aliases: [String] = [], packages: [String] = [], versionCommand: [String] = [], version: String? = nil,
        source: String, sourceNameFrom: String? = nil, sourceExtensions: [String] = [], compile: [String]? = nil,
        run: [String], runWithModules: [String]? = nil, forkServer: [String]? = nil, imageSetup: [String]? = nil,
        environment: [String: String] = [:],
        limits: LanguageLimits = LanguageLimits(), hello: HelloWorld = HelloWorld(source: "", stdout: "")
    ) {
        self.name = name
        self.aliases = aliases
        self.packages = packages
        self.versionCommand = versionCommand
        self.version = version
        self.source = source
        self.sourceNameFrom = sourceNameFrom
        self.sourceExtensions = sourceExtensions
        self.compile = compile
        self.run = run
        self.runWithModules = runWithModules
        self.forkServer = forkServer
        self.imageSetup = imageSetup
        self.environment = environment
        self.limits = limits
        self.hello = hello
    }

    private enum CodingKeys: String, CodingKey {
        case name, aliases, packages, versionCommand, version, source, sourceNameFrom, sourceExtensions, compile, run
        case runWithModules, forkServer, imageSetup, environment, limits, hello
    }

    /// The optional fields may be left out of an entry: adding a language stays a short entry.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        aliases = try c.decodeIfPresent([String].self, forKey: .aliases) ?? []
        packages = try c.decodeIfPresent([String].self, forKey: .packages) ?? []
        versionCommand = try c.decodeIfPresent([String].self, forKey: .versionCommand) ?? []
        version = try c.decodeIfPresent(String.self, forKey: .version)
        source = try c.decode(String.self, forKey: .source)
        sourceNameFrom = try c.decodeIfPresent(String.self, forKey: .sourceNameFrom)
        sourceExtensions = try c.decodeIfPresent([String].self, forKey: .sourceExtensions) ?? []
        compile = try c.decodeIfPresent([String].self, forKey: .compile)
        run = try c.decode([String].self, forKey: .run)
        runWithModules = try c.decodeIfPresent([String].self, forKey: .runWithModules)
        forkServer = try c.decodeIfPresent([String].self, forKey: .forkServer)
        imageSetup = try c.decodeIfPresent([String].self, forKey: .imageSetup)
        environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
        limits = try c.decodeIfPresent(LanguageLimits.self, forKey: .limits) ?? LanguageLimits()
        hello = try c.decodeIfPresent(HelloWorld.self, forKey: .hello) ?? HelloWorld(source: "", stdout: "")
    }
}

/// Floors a language needs whatever the job asked for (the agent raises a job's limits to them).
public struct LanguageLimits: Codable, Sendable, Equatable {
    /// Memory of the run step.
    public var memoryMiB: Int?
    /// Memory of the compile step.
    public var compileMemoryMiB: Int?
    /// Processes and threads of either step (a JVM or the go tool starts a dozen threads).
    public var processes: Int?

    public init(memoryMiB: Int? = nil, compileMemoryMiB: Int? = nil, processes: Int? = nil) {
        self.memoryMiB = memoryMiB
        self.compileMemoryMiB = compileMemoryMiB
        self.processes = processes
    }
}

/// A program every image must run, with the exact output it prints (the table test runs each one).
public struct HelloWorld: Codable, Sendable, Equatable {
    public var source: String
    public var stdout: String

    public init(source: String, stdout: String) {
        self.source = source
        self.stdout = stdout
    }
}
