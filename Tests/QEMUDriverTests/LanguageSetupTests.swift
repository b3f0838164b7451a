import AgentProtocol
import MicroVM
import QEMUDriver
import Testing

/// What the image build did ahead for a language (guest/language-setup/), with real VMs under TCG.
/// TypeScript's compiler starts from a V8 startup snapshot: the blob made for TCG guests loads (the
/// compile does not fall back to plain tsc), and what a compile from it prints, exits with and writes
/// is what plain tsc's does. javac maps the CDS archive of its classes; g++ uses the precompiled headers.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LanguageSetupTests {
    static let directory = "/usr/lib/codebench/typescript"

    /// Runs `script` in a VM unless the image lacks `required`, which the test then says it skipped.
    static func run(_ script: String, requiring required: String = directory + "/tsc", wallMs: Int = 20_000) async throws -> RunResult? {
        let result = try await VMTest.runOne(VMTest.request("[ -e \(required) ] || { echo missing; exit 0; }\n" + script, wallMs: wallMs))
        if result.stdoutText == "missing\n" {
            print("skipped: this guest image has no \(required) (scripts/build-guest-image --languages all adds it)")
            return nil
        }
        return result
    }

    /// `g++ -H` marks a precompiled header it used with `!`; the programs still compile and run.
    @Test func gPlusPlusUsesThePrecompiledHeadersSolutionsStartWith() async throws {
        let pch = "/usr/lib/codebench/cpp/pch"
        let script = """
            cd "$TMPDIR"
            printf '#include <iostream>\\nint main() { std::cout << "io" << std::endl; }\\n' > io.cpp
            printf '#include <bits/stdc++.h>\\nint main() { std::vector<int> v{2, 1}; std::sort(v.begin(), v.end()); std::cout << v[0] << std::endl; }\\n' > all.cpp
            printf '#include <cstdio>\\n#include <iostream>\\nint main() { std::cout << "late" << std::endl; }\\n' > late.cpp
            for f in io all late; do
                g++ -O2 -std=c++17 -I\(pch) -H -o $f $f.cpp 2> $f.headers && ./$f
                echo "$f used: $(grep -c '^! \(pch)/' $f.headers)"
            done
            """
        guard let result = try await Self.run(script, requiring: pch + "/iostream.gch", wallMs: 90_000) else { return }
        #expect(result.stdoutText.contains("io\nio used: 1\n"), "\(result.summary)")
        #expect(result.stdoutText.contains("1\nall used: 1\n"), "\(result.summary)")
        // A header that is not the first thing included comes from the system, as before.
        #expect(result.stdoutText.contains("late\nlate used: 0\n"), "\(result.summary)")
    }

    /// With `-Xshare:on` a JVM that cannot map the archive stops instead of going on without it.
    @Test func javacLoadsItsClassesFromTheImagesArchive() async throws {
        let archive = "/usr/lib/codebench/java/javac.jsa"
        let script = """
            cd "$TMPDIR" && printf 'public class Main { public static void main(String[] a) { System.out.println(1); } }\\n' > Main.java
            javac -J-XX:+UseSerialGC -J-XX:-UsePerfData -J-XX:TieredStopAtLevel=1 -J-Xshare:on -J-XX:SharedArchiveFile=\(archive) \\
                -J-Xlog:class+load=info -encoding UTF-8 -d . Main.java > classes.txt
            echo "status=$?"
            echo "from the archive: $(grep -c 'source: shared objects file (top)' classes.txt)"
            echo "from the modules: $(grep -c 'source: jrt:/' classes.txt)"
            """
        guard let result = try await Self.run(script, requiring: archive, wallMs: 60_000) else { return }
        #expect(result.stdoutText.contains("status=0"), "\(result.summary)")
        let counts = result.stdoutText.split(separator: "\n").compactMap { line -> (String, Int)? in
            let parts = line.split(separator: ":")
            guard parts.count == 2, let count = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { return nil }
            return (String(parts[0]), count)
        }
        let archived = counts.first { $0.0 == "from the archive" }?.1 ?? 0
        let loaded = counts.first { $0.0 == "from the modules" }?.1 ?? -1
        // javac's own classes come from the dynamic archive; nearly none are read from the modules.
        #expect(archived > 1000, "\(result.summary)")
        #expect(loaded >= 0 && loaded < archived / 10, "\(result.summary)")
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
