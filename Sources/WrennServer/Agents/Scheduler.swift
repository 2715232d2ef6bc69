/// Picks the host for a new capsule: an online host of the right pool with room for the capsule's vCPUs, memory and
/// disk, the one with the most headroom first (reference §11, LeastLoaded).
///
/// Pools never mix: a BYOC team's capsules go only to its own `byoc` hosts; other teams' only to `regular` hosts.
/// A capsule from a snapshot template must go to the host that holds the template. Capacity is the host's
/// registered facts: memory and disk as reported, vCPUs `cpuOvercommit` × cores. Paused capsules hold half their
/// memory and two thirds of their disk (their files stay on the host) and no vCPU.
enum Scheduler {
    static let cpuOvercommit: Int64 = 2

    struct Demand: Sendable {
        var vcpus: Int64
        var memoryMB: Int64
        var diskMB: Int64
    }

    struct Usage: Sendable {
        var vcpus: Double = 0
        var memoryMB: Double = 0
        var diskMB: Double = 0
    }

    /// What each host's capsules hold, from the per-status sums.
    static func usage(_ rows: [HostLoadRow]) -> [String: Usage] {
        var result: [String: Usage] = [:]
        for row in rows {
            guard let host = row.hostId else { continue }
            let paused = row.status == "paused"
            var u = result[host] ?? Usage()
            u.vcpus += paused ? 0 : Double(row.vcpus ?? 0)
            u.memoryMB += Double(row.memoryMb ?? 0) * (paused ? 0.5 : 1)
            u.diskMB += Double(row.diskSizeMb ?? 0) * (paused ? 2.0 / 3.0 : 1)
            result[host] = u
        }
        return result
    }

    /// The smallest free fraction of the host's vCPU, memory and disk after placing `demand`; nil when it does not fit.
    static func headroom(_ host: HostRecord, used: Usage, demand: Demand) -> Double? {
        let cpu = Double((host.cpuCores ?? 0) * cpuOvercommit), memory = Double(host.memoryMb ?? 0), disk = Double((host.diskGb ?? 0) * 1024)
        guard cpu > 0, memory > 0, disk > 0 else { return nil }
        let freeCPU = cpu - used.vcpus - Double(demand.vcpus)
        let freeMemory = memory - used.memoryMB - Double(demand.memoryMB)
        let freeDisk = disk - used.diskMB - Double(demand.diskMB)
        guard freeCPU >= 0, freeMemory >= 0, freeDisk >= 0 else { return nil }
        return min(freeCPU / cpu, freeMemory / memory, freeDisk / disk)
    }

    /// The host for the capsule, or nil when none fits (the caller says why).
    static func choose(hosts: [HostRecord], load: [String: Usage], team: String, teamIsByoc: Bool, demand: Demand,
                       requiredHost: String?) -> HostRecord? {
        let eligible = hosts.filter { host in
            guard host.status == "online", let address = host.address, !address.isEmpty else { return false }
            if let requiredHost, host.id != requiredHost { return false }
            return teamIsByoc ? (host.type == "byoc" && host.teamId == team) : host.type == "regular"
        }
        let ranked = eligible.compactMap { host in headroom(host, used: load[host.id] ?? Usage(), demand: demand).map { (host, $0) } }
        return ranked.max { a, b in a.1 == b.1 ? a.0.id > b.0.id : a.1 < b.1 }?.0
    }
}
