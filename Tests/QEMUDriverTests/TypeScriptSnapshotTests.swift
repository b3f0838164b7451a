import AgentProtocol
import MicroVM
import QEMUDriver
import Testing

/// The image's TypeScript compiler starts from a V8 startup snapshot (guest/language-setup/), with real
/// VMs under TCG: the blob made for TCG guests loads (the compile does not fall back to plain tsc), and
/// what a compile from it prints, exits with and writes is what plain tsc's does.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TypeScriptSnapshotTests {
    static let directory = "/usr/lib/codebench/typescript"

    /// Runs `script` in a VM unless the image has no TypeScript, which the test then says it skipped.
    static func run(_ script: String, wallMs: Int = 20_000) async throws -> RunResult? {
        let result = try await VMTest.runOne(VMTest.request("[ -x \(directory)/tsc ] || { echo no-typescript; exit 0; }\n" + script, wallMs: wallMs))
        if result.stdoutText == "no-typescript\n" {
            print("skipped: this guest image has no typescript (scripts/build-guest-image --languages all adds it)")
            return nil
        }
        return result
    }

    @Test func theBlobForTCGGuestsLoadsInATCGGuest() async throws {
        // The wrapper's own flags and choice of blob, then node on that blob alone: no fallback here.
        let script = """
            flags=$(sed -n "s/^flags='\\(.*\\)'$/\\1/p" \(Self.directory)/tsc)
            grep -q 'QEMU TCG CPU' /proc/cpuinfo && echo tcg-cpu
            node $flags --snapshot-blob \(Self.directory)/tsc-tcg.blob -- --version
            echo "status=$?"
            """
        guard let result = try await Self.run(script) else { return }
        #expect(result.stdoutText.contains("tcg-cpu"), "\(result.summary)")
        #expect(result.stdoutText.contains("Version 4."), "\(result.summary)")
        #expect(result.stdoutText.contains("status=0"), "\(result.summary)")
        #expect(!result.stderrText.contains("Failed to load the startup snapshot"), "\(result.summary)")
    }

    @Test func aCompileFromTheSnapshotPrintsExitsAndWritesWhatPlainTscDoes() async throws {
        // A type error without --noEmitOnError: tsc reports it, exits 2 and still writes the JavaScript.
        // Same language version as the snapshot's warm-up, so the parsed library files are reused.
        let script = """
            cd "$TMPDIR" && mkdir snapshot plain
            printf 'const n: number = "text";\\nexport const doubled = [1, 2, 3].map((x) => x * 2);\\nconsole.log(doubled.join(" "), n);\\n' > snapshot/a.ts
            cp snapshot/a.ts plain/a.ts
            flags="--strict --target es2020 --module commonjs --pretty false"
            (cd snapshot && \(Self.directory)/tsc $flags a.ts > out.txt; echo $? > status)
            (cd plain && tsc $flags a.ts > out.txt; echo $? > status)
            for file in out.txt status a.js; do
                if cmp -s snapshot/$file plain/$file; then echo "same $file"; else echo "differs $file"; cat snapshot/$file plain/$file; fi
            done
            cat snapshot/out.txt snapshot/status
            """
        guard let result = try await Self.run(script, wallMs: 150_000) else { return }
        for file in ["out.txt", "status", "a.js"] {
            #expect(result.stdoutText.contains("same \(file)"), "\(result.summary)")
        }
        #expect(result.stdoutText.contains("a.ts(1,7): error TS2322"), "\(result.summary)")
        #expect(result.stdoutText.hasSuffix("\n2\n"), "\(result.summary)")
        #expect(result.stderrText.isEmpty, "\(result.summary)")
    }
}
