// CodeBench: TypeScript's compiler as a V8 startup snapshot, built once per guest image.
//
// Why: under TCG a fresh `tsc` spends ~20 s on a hello world, nearly all of it loading its own 6 MB of
// JavaScript and parsing and binding the default library's declaration files (lib.es2020.full.d.ts
// and what it references, ~1.5 MB), the same work for every job. The image build runs this file after
// tsc.js (its last statement, the call that runs the command line, removed) under
// `node --build-snapshot`: the compiler is loaded, a hello world is compiled in memory with the
// recipe's flags, and the heap (the compiler and the library's parsed, bound source files) is saved.
// A job's compile then starts from that heap (the recipe's command, /usr/lib/codebench/typescript/tsc,
// runs `node --snapshot-blob tsc.blob -- <tsc arguments>`) and runs tsc's own command line on its
// arguments: same diagnostics, same output files, same exit status.
//
// What is reused: only the library's declaration files, and only when tsc would parse the same file
// with the same text for the same language version and module format; anything else is parsed as
// usual. Reusing parsed and bound files across programs is what tsc's watch mode and tsserver do.
// Nothing of a job ever reaches the snapshot: it is made at image build time, before any job.
(function () {
    const v8 = require("v8");
    const fs = require("fs");
    const libraryDirectory = "/usr/share/nodejs/typescript/lib/";
    const registry = "/usr/lib/codebench/languages.json";
    const parsed = new Map();
    const parse = ts.createSourceFile;
    let reusing = true;

    ts.createSourceFile = function (fileName, text, languageVersionOrOptions, setParentNodes, scriptKind) {
        if (!reusing || setParentNodes || scriptKind !== undefined || typeof fileName !== "string" || !fileName.startsWith(libraryDirectory)) {
            return parse.apply(this, arguments);
        }
        const options = typeof languageVersionOrOptions === "object" ? languageVersionOrOptions : { languageVersion: languageVersionOrOptions };
        const key = fileName + "\0" + options.languageVersion + "\0" + options.impliedNodeFormat;
        const known = parsed.get(key);
        if (known !== undefined && known.text === text) return known;
        const file = parse.apply(this, arguments);
        parsed.set(key, file);
        return file;
    };

    // The recipe's own flags: its compile command's arguments, without the placeholders and the output
    // directory.
    function recipeFlags() {
        const entry = JSON.parse(fs.readFileSync(registry, "utf8")).languages.find((language) => language.name === "typescript");
        if (!entry || !entry.compile) throw new Error(registry + " has no typescript compile command");
        const flags = entry.compile.slice(1).filter((argument) => !/^\{[a-z]+\}$/.test(argument));
        const outDir = flags.indexOf("--outDir");
        if (outDir >= 0) flags.splice(outDir, 2);
        return flags;
    }

    const entryName = "/codebench-snapshot/main.ts";
    const hello = "const greeting: string = 'hello, world';\nconsole.log(greeting);\n";
    const commandLine = ts.parseCommandLine(recipeFlags().concat([entryName]));
    if (commandLine.errors.length > 0) throw new Error("the recipe's flags: " + commandLine.errors.map((error) => error.messageText).join("; "));
    const host = ts.createCompilerHost(commandLine.options);
    const readSourceFile = host.getSourceFile;
    host.getSourceFile = (name, version, onError, fresh) =>
        name === entryName ? parse(name, hello, version) : readSourceFile(name, version, onError, fresh);
    host.writeFile = () => {};
    const program = ts.createProgram([entryName], commandLine.options, host);
    const diagnostics = ts.getPreEmitDiagnostics(program).concat(program.emit().diagnostics);
    if (diagnostics.length > 0) throw new Error("the hello world does not compile: " + ts.formatDiagnostics(diagnostics, host));
    if (parsed.size === 0) throw new Error("the hello world parsed no library file under " + libraryDirectory);

    v8.startupSnapshot.setDeserializeMainFunction(() => {
        // Both Node (until a chdir) and tsc's system object (for good) keep the current directory
        // they first saw, the build's, and the snapshot kept both: a chdir to "." (the compile's own
        // directory) makes Node ask the kernel again, and tsc asks Node every time.
        process.chdir(".");
        ts.sys.getCurrentDirectory = () => process.cwd();
        const args = process.argv.slice(1);
        // Module detection decides how a file is parsed beyond its language version: a compile that
        // sets it parses the library afresh.
        reusing = ts.parseCommandLine(args).options.moduleDetection === undefined;
        if (ts.sys.setBlocking) ts.sys.setBlocking();
        ts.executeCommandLine(ts.sys, ts.noop, args);
    });
})();
