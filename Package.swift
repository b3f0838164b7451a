// swift-tools-version: 6.1
import PackageDescription

// One module per concern; the two executables only wire modules together.
// Read the tree top-down: RESP -> RedisClient -> JobQueue -> Worker,
// AgentProtocol <- GuestAgent (in the guest) and MicroVM <- QEMUDriver / FirecrackerDriver (on the host).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "CodeBenchWorker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "codebench-worker", targets: ["CodeBenchWorkerCLI"]),
        .executable(name: "codebench-agent", targets: ["GuestAgent"]),
        .executable(name: "codebench-egress", targets: ["CodeBenchEgress"]),
        .executable(name: "codebench-jail", targets: ["CodeBenchJail"]),
        .executable(name: "codebench-bench", targets: ["CodeBenchBench"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: Redis
        .target(
            name: "RESP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Guest
        // Shared by the host and the in-guest agent; depends on nothing but FoundationEssentials
        // so the agent stays a small static binary.
        // Judge mode's pure rules (output comparison, work file names): the parser, the agent and fast tests share them.
        .target(name: "Judging", swiftSettings: swiftSettings),
        .target(name: "AgentProtocol", dependencies: ["Judging"], swiftSettings: swiftSettings),
        // The language registry (guest/languages.json): read by the agent in the guest and by the host from the image directory.
        .target(name: "Languages", swiftSettings: swiftSettings),
        // sendmsg with SCM_RIGHTS: linked by the host (QEMU's jail hand-overs) and by the guest agent (its fork servers).
        .target(name: "DescriptorPassing", swiftSettings: swiftSettings),
        .executableTarget(
            name: "GuestAgent", dependencies: ["AgentProtocol", "Languages", "DescriptorPassing"], swiftSettings: swiftSettings),

        // MARK: VMs
        .target(
            name: "MicroVM",
            dependencies: [
                "AgentProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QEMUDriver",
            dependencies: [
                "MicroVM", "DescriptorPassing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The one-process launcher of a jailed QEMU (namespaces, pivot_root, credentials, exec): C, as it
        // runs between fork and exec and needs system calls libc does not wrap (Sources/CodeBenchJail/main.c).
        .executableTarget(
            name: "CodeBenchJail", path: "Sources/CodeBenchJail", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        .target(
            name: "FirecrackerDriver",
            dependencies: [
                "MicroVM",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Egress
        // The filtering CONNECT proxy QEMU's guestfwd starts once per guest connection (docs/network.md).
        // Plain Glibc, no NIO and no Foundation: it starts per connection, so it stays small and quick.
        .target(name: "EgressProxy", swiftSettings: swiftSettings),
        .executableTarget(
            name: "CodeBenchEgress", dependencies: ["EgressProxy"], path: "Sources/CodeBenchEgress", swiftSettings: swiftSettings
        ),

        // MARK: Jobs
        .target(
            name: "JobQueue",
            dependencies: [
                "RedisClient", "RESP", "Judging",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Worker",
            dependencies: [
                "JobQueue", "Languages", "MicroVM", "QEMUDriver", "FirecrackerDriver",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Observability
        // The status HTTP server (/metrics, /healthz, /readyz); knows nothing of the worker, which it reads through a closure.
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks (a command, never timed tests)
        .target(
            name: "Benchmarks",
            dependencies: ["RedisClient", "MicroVM", "QEMUDriver", "Worker", "JobQueue", "Languages", "TestSupport"],
            swiftSettings: swiftSettings
        ),

        // MARK: Executable
        .executableTarget(
            name: "CodeBenchWorkerCLI",
            dependencies: [
                "Worker", "JobQueue", "Judging", "Languages", "RedisClient", "MicroVM", "QEMUDriver", "FirecrackerDriver", "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // The benchmarks' own binary: `codebench-worker` never links TestSupport's redis-server spawner.
        .executableTarget(
            name: "CodeBenchBench",
            dependencies: [
                "Benchmarks", "Worker", "Languages", "QEMUDriver", "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        // Real-process helpers (a redis-server on a free loopback port, the cached guest image), shared by tests and benchmarks.
        .target(
            name: "TestSupport",
            dependencies: [
                "RedisClient", "MicroVM",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: ["RESP", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: ["RedisClient", "RESP", "TestSupport", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "AgentProtocolTests", dependencies: ["AgentProtocol", "Judging"], swiftSettings: swiftSettings),
        .testTarget(name: "LanguagesTests", dependencies: ["Languages"], swiftSettings: swiftSettings),
        .testTarget(name: "EgressProxyTests", dependencies: ["EgressProxy", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "QEMUDriverTests",
            dependencies: [
                "QEMUDriver", "MicroVM", "AgentProtocol", "TestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FirecrackerDriverTests",
            dependencies: ["FirecrackerDriver", "MicroVM", "TestSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MicroVMTests",
            dependencies: [
                "MicroVM", "AgentProtocol", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                // The agent channel fuzz drives the real pipeline in an EmbeddedChannel.
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ObservabilityTests",
            dependencies: [
                "Observability", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "JobQueueTests",
            dependencies: ["JobQueue", "Judging", "RedisClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        // The Worker's lifecycle over an in-memory queue and a scripted VM driver: no redis-server, no QEMU,
        // milliseconds (`swift test --filter WorkerLogicTests`).
        .testTarget(
            name: "WorkerLogicTests",
            dependencies: [
                "Worker", "JobQueue", "Languages", "MicroVM", "AgentProtocol", "TestSupport", "QEMUDriver", "FirecrackerDriver",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "JobQueue", "Languages", "RedisClient", "QEMUDriver", "TestSupport", "Observability",
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
