import ArgumentParser
import Foundation
import Logging
import WrennAgent
import WrennEnvd

/// `wrenn bench …`: speed and memory figures measured in one run (benchmarks, never timed assertions in tests).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed and memory and print figures and ratios.",
        subcommands: [Capsules.self, Envd.self, API.self]
    )

    /// envd on loopback: exec round-trip p50/p99 and file read/write throughput.
    struct Envd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "envd", abstract: "envd exec latency and file throughput on loopback.")

        @Option(help: "Foreground execs to time.") var execs: Int = 300
        @Option(help: "File size for the read/write figures (MiB).") var fileMegabytes: Int = 256

        func run() async throws {
            let logger = Logging.bootstrapped(label: "wrenn.bench", level: "warning")
            // The benchmark prints each figure as it is measured.
            _ = try await runEnvdBenchmark(execIterations: execs, fileMegabytes: fileMegabytes, logger: logger) { print($0) }
        }
    }

    /// Raw QEMU restore vs create-to-first-exec, raw save/restore vs pause/resume, cold boot, idle memory.
    struct Capsules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "capsules",
            abstract: "Capsule lifecycle on this host's runtime (needs root, QEMU and the built image)."
        )

        @Option(help: "Data directory holding the image (default: $WRENN_DIR or /var/lib/wrenn).") var dataDir: String?
        @Option(help: "Repetitions per figure.") var iterations: Int = 3
        @Option(help: "Image or template name.") var template: String = "minimal"

        func run() async throws {
            let logger = Logging.bootstrapped(label: "wrenn.bench", level: "warning")
            let data = dataDir ?? ProcessInfo.processInfo.environment["WRENN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn"
            // Its own name prefix and address pool: a runtime's start() reclaims stale namespaces of its prefix, so the
            // benchmark must never share the running agent's.
            guard let network = NetworkConfig(namePrefix: "wb-", pool: "10.203.0.0/16") else {
                throw ValidationError("invalid benchmark network configuration")
            }
            let runtime = QemuMicrovmRuntime(config: RuntimeConfig(dataDirectory: data + "/bench", network: network,
                                                                   imagesDirectory: data + "/images"),
                                             logger: logger)
            try await runtime.start()
            let report = try await CapsuleBenchmark(runtime: runtime, template: template, iterations: iterations)
                .run { print("… \($0)") }
            print(report.text)
        }
    }
}
