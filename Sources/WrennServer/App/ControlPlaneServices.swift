import Logging

/// The control plane's services, wired once at start and shared by every route.
public struct ControlPlaneServices: Sendable {
    public let config: ServerConfig
    public let database: Database
    public let clock: any WallClock
    public let sessions: SessionService
    public let accounts: AccountService
    public let teams: TeamService
    public let apiKeys: APIKeyService
    public let audit: AuditService
    public let users: UserDirectoryService
    public let oauth: OAuthService
    public let events: EventLog
    public let capsules: CapsuleService
    public let snapshots: SnapshotService
    public let lifecycle: LifecycleWorker
    public let admin: AdminService
    public let hostService: HostService
    public let hostMonitor: HostMonitor
    public let stats: StatsService
    public let channels: ChannelService
    public let channelDelivery: ChannelDeliveryService
    public let builds: BuildService
    public let buildWorker: BuildWorker
    /// The gate of every data-plane use of a capsule (running check, per-team concurrency, audit).
    public let dataPlane: DataPlaneService
    /// Open `GET /v1/events/stream` connections per principal and overall.
    let eventStreams: ConcurrencyLimiter

    public init(config: ServerConfig, database: Database, clock: any WallClock, mailer: Mailer, hosts: HostDirectory, logger: Logger) {
        self.config = config
        self.database = database
        self.clock = clock
        let audit = AuditService(database: database, clock: clock)
        let sessions = SessionService(database: database, clock: clock)
        let teams = TeamService(database: database, clock: clock, audit: audit)
        self.audit = audit
        self.sessions = sessions
        self.teams = teams
        self.accounts = AccountService(database: database, clock: clock, hasher: PasswordHasher(cost: config.bcryptCost), sessions: sessions,
                                       teams: teams, audit: audit, mailer: mailer, frontendURL: config.frontendURL, logger: logger)
        self.apiKeys = APIKeyService(database: database, clock: clock, audit: audit)
        self.users = UserDirectoryService(database: database)
        self.oauth = OAuthService(config: config, database: database, clock: clock, sessions: sessions, teams: teams, audit: audit,
                                  accounts: accounts, logger: logger)
        let events = EventLog(database: database, clock: clock)
        let lifecycle = LifecycleWorker()
        let capsules = CapsuleService(database: database, clock: clock, audit: audit, events: events, hosts: hosts, worker: lifecycle,
                                      logger: logger)
        self.events = events
        self.lifecycle = lifecycle
        self.capsules = capsules
        self.dataPlane = DataPlaneService(capsules: capsules, audit: audit, database: database, settings: config.edge, logger: logger)
        self.eventStreams = ConcurrencyLimiter(perKey: config.edge.eventStreamsPerPrincipal, overall: config.edge.eventStreamsTotal,
                                               what: "event streams", retryAfter: config.edge.retryAfterSeconds)
        self.stats = StatsService(database: database, clock: clock, sampleInterval: config.statsSampleInterval)
        let sender = ChannelSender(timeout: config.channels.requestTimeout, allowPrivate: config.channels.allowPrivateReceivers)
        self.channels = ChannelService(database: database, clock: clock, audit: audit, settings: config.channels, sender: sender, logger: logger)
        self.channelDelivery = ChannelDeliveryService(database: database, clock: clock, settings: config.channels, sender: sender, logger: logger)
        self.snapshots = SnapshotService(database: database, clock: clock, audit: audit, events: events, capsules: capsules)
        let buildWorker = BuildWorker()
        self.buildWorker = buildWorker
        self.builds = BuildService(database: database, clock: clock, audit: audit, capsules: capsules, snapshots: snapshots,
                                   worker: buildWorker, dataDirectory: config.dataDirectory, logger: logger)
        self.admin = AdminService(database: database, clock: clock, audit: audit, capsuleService: capsules, teamService: teams, logger: logger)
        let reconciler = HostReconciler(database: database, clock: clock, events: events, directory: hosts, logger: logger)
        self.hostService = HostService(database: database, clock: clock, audit: audit, events: events, directory: hosts,
                                       tokens: HostTokens(secret: config.secret), reconciler: reconciler, worker: lifecycle, logger: logger)
        self.hostMonitor = HostMonitor(database: database, clock: clock, audit: audit, events: events, reconciler: reconciler,
                                       settings: config.hostMonitor, logger: logger)
    }
}
