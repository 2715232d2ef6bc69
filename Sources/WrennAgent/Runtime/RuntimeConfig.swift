import Foundation

/// Settings of the QEMU runtime.
public struct RuntimeConfig: Sendable {
    /// Data directory (`WRENN_DIR`): `images/`, `templates/`, `capsules/` live under it.
    public var dataDirectory: String
    /// Network names and slot pool.
    public var network: NetworkConfig
    /// Bound on a cold boot reaching envd health (TCG boots take ~3–5 s; generous for loaded CI hosts).
    public var coldBootTimeout: Duration = .seconds(120)
    /// Bound on a restore reaching envd health.
    public var restoreTimeout: Duration = .seconds(30)
    /// Bound on the KVM boot probe.
    public var acceleratorProbeBound: Duration = .seconds(8)
    /// Forced accelerator (skips the probe), or `nil` to probe.
    public var accelerator: QemuMachine.Accelerator?
    /// TCG translation-cache size for capsules (MiB), or `nil` for QEMU's default; env `WRENN_TCG_TB_MIB`.
    public var tcgTranslationCacheMiB: Int? = ProcessInfo.processInfo.environment["WRENN_TCG_TB_MIB"].flatMap(Int.init)
    /// Whether capsules get outbound network (NAT through the host) unless their request says otherwise.
    /// Off here (tests, library use); `wrenn agent`/`wrenn dev` turn it on unless `--no-egress`.
    public var egressDefault = false
    /// DNS servers given to guests with egress (default: the host's non-loopback `nameserver`s).
    public var guestNameservers: [String] = HostFacts.upstreamNameservers()

    /// Creates a config.
    public init(dataDirectory: String, network: NetworkConfig, accelerator: QemuMachine.Accelerator? = nil, imagesDirectory: String? = nil) {
        self.dataDirectory = dataDirectory
        self.imagesDirectory = imagesDirectory ?? dataDirectory + "/images"
        self.network = network
        self.accelerator = accelerator
    }

    /// Where capsule directories live.
    public var capsulesDirectory: String { dataDirectory + "/capsules" }
    /// Where template directories live.
    public var templatesDirectory: String { dataDirectory + "/templates" }
    /// Where images live (default `<data>/images`; may point at another data directory's images so several
    /// runtimes — e.g. test suites — share built images but not capsules or templates).
    public var imagesDirectory: String
}
