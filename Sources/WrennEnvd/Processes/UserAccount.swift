#if canImport(Glibc)
import Glibc
#endif

/// A local user resolved from the password database, with its supplementary groups.
struct UserAccount: Sendable, Equatable {
    let name: String
    let uid: uid_t
    let gid: gid_t
    let home: String
    let shell: String
    let groups: [gid_t]

    /// True when processes for this account can run without switching user.
    var isCurrentProcessUser: Bool { uid == getuid() && gid == getgid() }

    /// Looks `name` up (getpwnam_r, getgrouplist); throws 400 when the user does not exist.
    static func lookup(_ name: String) throws(EnvdError) -> UserAccount {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        let rc = getpwnam_r(name, &pwd, &buffer, buffer.count, &result)
        guard rc == 0, let entry = result?.pointee else {
            throw .invalid("user '\(name)' does not exist in this capsule")
        }
        let home = entry.pw_dir.map { String(cString: $0) } ?? "/"
        let shell = entry.pw_shell.map { String(cString: $0) } ?? "/bin/sh"
        return UserAccount(
            name: name, uid: entry.pw_uid, gid: entry.pw_gid, home: home.isEmpty ? "/" : home,
            shell: shell.isEmpty ? "/bin/sh" : shell, groups: supplementaryGroups(name, entry.pw_gid)
        )
    }

    /// The account envd itself runs as.
    static func current() -> UserAccount {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        if getpwuid_r(getuid(), &pwd, &buffer, buffer.count, &result) == 0, let entry = result?.pointee,
            let namePointer = entry.pw_name
        {
            let name = String(cString: namePointer)
            return UserAccount(
                name: name, uid: entry.pw_uid, gid: entry.pw_gid,
                home: entry.pw_dir.map { String(cString: $0) } ?? "/",
                shell: entry.pw_shell.map { String(cString: $0) } ?? "/bin/sh",
                groups: supplementaryGroups(name, entry.pw_gid)
            )
        }
        return UserAccount(name: "\(getuid())", uid: getuid(), gid: getgid(), home: "/", shell: "/bin/sh", groups: [getgid()])
    }

    private static func supplementaryGroups(_ name: String, _ gid: gid_t) -> [gid_t] {
        var count: Int32 = 32
        while count < 65536 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(name, gid, &groups, &n) >= 0 {
                return Array(groups.prefix(Int(n)))
            }
            count = max(n, count * 2)
        }
        return [gid]
    }
}

/// Name lookups for uids and gids, cached for the length of one listing.
struct OwnerNames {
    private var users: [uid_t: String] = [:]
    private var groups: [gid_t: String] = [:]

    mutating func user(_ uid: uid_t) -> String {
        if let name = users[uid] { return name }
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        var name = "\(uid)"
        if getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, let p = result?.pointee.pw_name {
            name = String(cString: p)
        }
        users[uid] = name
        return name
    }

    mutating func group(_ gid: gid_t) -> String {
        if let name = groups[gid] { return name }
        var grp = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        var name = "\(gid)"
        if getgrgid_r(gid, &grp, &buffer, buffer.count, &result) == 0, let p = result?.pointee.gr_name {
            name = String(cString: p)
        }
        groups[gid] = name
        return name
    }
}
