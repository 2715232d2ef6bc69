// swift-tools-version:6.2
// Wrenn in Swift: control plane, host agent, envd and the `wrenn` CLI in one package.
// Dependencies come only from the machine's local package copies; keep this list short (clean builds are slow).
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "wrenn-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "wrenn", targets: ["wrenn"]),
        .executable(name: "wrenn-envd", targets: ["wrenn-envd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        // Already in the graph through swift-nio-ssl/-extras: X.509 for the control plane's agent CA (mutual TLS).
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // Codable wire types of the public API and of the internal hops; ids; error codes. Foundation only.
        .target(
            name: "WrennWire",
            dependencies: [],
            swiftSettings: strict
        ),
        // The HTTP edge shared by the control plane, the agent and envd: the error envelope and its middleware, the
        // bearer-token check, JSON answers, security headers, header allow-lists, and the HTTP/1 + WebSocket server
        // channel (keep-alive upgrades, refusals answered before the upgrade, a deadline for the first request head).
        .target(
            name: "WrennHTTP",
            dependencies: [
                "WrennWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The one reverse proxy and the one WebSocket relay (control plane → agent → envd / guest ports). Apart from
        // WrennHTTP so envd, which proxies nothing, does not link an HTTP client and TLS.
        .target(
            name: "WrennProxy",
            dependencies: [
                "WrennHTTP", "WrennWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // The control plane's CA for host agents, agent CSRs, and the mutual-TLS configurations of both sides.
        .target(
            name: "WrennPKI",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Control plane: REST/WS/SSE API, accounts, teams, persistence (SQLite | PostgreSQL), mail, events.
        .target(
            name: "WrennServer",
            dependencies: [
                "WrennWire", "WrennPKI", "WrennImage", "WrennHTTP", "WrennProxy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            resources: [.copy("Resources/openapi.yaml")],
            swiftSettings: strict
        ),
        // Host agent: capsules on one machine (QEMU microVMs, disks, network, pause/resume, snapshots).
        .target(
            name: "WrennAgent",
            dependencies: [
                "WrennWire", "WrennImage", "WrennPKI", "WrennHTTP", "WrennProxy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // fork/exec with setsid, user switch and a controlling PTY; ioctl helpers (Swift cannot call fork or variadic ioctl).
        .target(name: "CWrennSpawn"),
        // envd: the agent inside every capsule (processes, PTYs, files, metrics).
        .target(
            name: "WrennEnvd",
            dependencies: [
                "WrennWire", "WrennHTTP", "CWrennSpawn",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Guest image builder (kernel, initramfs, debootstrap root filesystem, envd inside).
        .target(
            name: "WrennImage",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The `wrenn` CLI: serve, agent, envd, dev, image, bench, and client commands.
        .executableTarget(
            name: "wrenn",
            dependencies: [
                "WrennWire", "WrennServer", "WrennAgent", "WrennEnvd", "WrennImage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The slim guest binary baked into capsule images: envd alone, no control-plane code.
        .executableTarget(
            name: "wrenn-envd",
            dependencies: [
                "WrennEnvd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Test support shared by test targets: a real agent over a runtime that runs envd without a VM.
        .target(
            name: "WrennTestSupport",
            dependencies: [
                "WrennAgent", "WrennEnvd", "WrennImage", "WrennPKI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "WrennWireTests", dependencies: ["WrennWire"], swiftSettings: strict),
        .testTarget(
            name: "WrennServerTests",
            dependencies: [
                "WrennServer", "WrennWire", "WrennTestSupport", "WrennPKI", "WrennHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WrennEnvdTests",
            dependencies: [
                "WrennEnvd", "WrennWire", "WrennHTTP",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WrennAgentTests",
            dependencies: [
                "WrennTestSupport",
                "WrennAgent", "WrennImage", "WrennWire", "WrennEnvd", "WrennPKI", "WrennHTTP", "WrennProxy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        // The official Python SDK (Tests/SDK, run with a venv's python) against a real control plane, agent and capsules.
        .testTarget(
            name: "WrennSDKTests",
            dependencies: [
                "WrennServer", "WrennAgent", "WrennTestSupport", "WrennWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
    ]
)
