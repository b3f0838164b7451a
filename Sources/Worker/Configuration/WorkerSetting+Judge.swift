import AgentProtocol

extension WorkerSetting {
    /// Judge mode's settings (``JudgeConfiguration``).
    static let judgeSettings: [WorkerSetting] = [
        int("max-tests", "most test cases one job may have (default 100)") { $0.judge.maximumTests = $1 },
        int("case-output-bytes", "stdout and stderr kept per test case in the result (default 4096)") {
            $0.judge.caseOutputBytes = $1
        },
        bool("allow-compiler-options", "honour a job's compiler_options, within the allow-list (default false)") {
            $0.judge.allowCompilerOptions = $1
        },
        WorkerSetting(
            name: "compiler-option-prefixes", help: "more allowed compiler flag prefixes, as lang:prefix,... (e.g. cpp:-fconcepts)"
        ) { (config, value) throws(WorkerSettingValueError) in
            for entry in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
                let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, parts[1].hasPrefix("-") else {
                    throw WorkerSettingValueError(expected: "comma-separated language:-prefix entries (c, cpp)")
                }
                config.judge.compilerOptionPrefixes[Language(parts[0]), default: []].append(parts[1])
            }
        },
        int("max-cpu-time-ms", "most CPU time a job may ask for") { $0.judge.maximumCPUTimeMilliseconds = $1 },
        int("default-compile-wall-ms", "compile wall time of a job that does not ask (default: its run's)") {
            $0.judge.defaultCompileWallTimeMilliseconds = $1
        },
        int("max-compile-wall-ms", "most compile wall time a job may ask for") { $0.judge.maximumCompileWallTimeMilliseconds = $1 },
        int("default-compile-memory-mib", "compile memory of a job that does not ask (default: its run's)") {
            $0.judge.defaultCompileMemoryBytes = $1 << 20
        },
        int("max-compile-memory-mib", "most compile memory a job may ask for") { $0.judge.maximumCompileMemoryBytes = $1 << 20 },
        int("max-file-size-mib", "largest file a job may let its program write") { $0.judge.maximumFileSizeBytes = $1 << 20 },
    ]
}
