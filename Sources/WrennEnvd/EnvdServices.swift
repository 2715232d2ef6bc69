import Logging

/// The parts of envd the routes call into, built once per server.
struct EnvdServices: Sendable {
    let configuration: EnvdConfiguration
    let identity: EnvdIdentity
    let processes: ProcessManager
    let ptys: PTYManager
    let files: FileService
    let metrics: GuestMetrics
    let snapshot: SnapshotHooks

    init(configuration: EnvdConfiguration, logger: Logger) {
        self.configuration = configuration
        let identity = EnvdIdentity(
            .init(
                accessToken: configuration.accessToken, capsuleID: configuration.capsuleID,
                defaultUser: configuration.defaultUser, defaultEnv: configuration.defaultEnv
            )
        )
        self.identity = identity
        let table = ProcessTable()
        self.processes = ProcessManager(table: table, identity: identity, limits: configuration.limits, logger: logger)
        self.ptys = PTYManager(table: table, identity: identity, limits: configuration.limits, logger: logger)
        self.files = FileService(identity: identity, limits: configuration.limits)
        self.metrics = GuestMetrics()
        self.snapshot = SnapshotHooks(identity: identity, resolvConfPath: configuration.resolvConfPath, logger: logger)
    }

    /// Drops exited processes and sessions older than the retention.
    func prune() {
        processes.table.prune(retention: configuration.exitedRetention)
        ptys.prune(retention: configuration.exitedRetention)
    }
}
