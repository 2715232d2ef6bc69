/// One file system entry (spec schema `FileEntry`).
public struct FileEntry: Codable, Sendable, Equatable {
    /// Entry kinds.
    public enum Kind: String, Codable, Sendable {
        case file, directory, symlink, unknown
    }

    /// Last path component.
    public var name: String
    /// Absolute path.
    public var path: String
    /// Kind (symlinks are not followed).
    public var type: Kind
    /// Size in bytes.
    public var size: Int64
    /// Full `st_mode` (type and permission bits).
    public var mode: UInt32
    /// `ls -l` style string, e.g. `-rwxr-xr-x`.
    public var permissions: String
    /// Owner name (or the uid as text).
    public var owner: String
    /// Group name (or the gid as text).
    public var group: String
    /// Modification time, Unix seconds.
    public var modifiedAt: Int64
    /// Target of a symlink.
    public var symlinkTarget: String?

    public init(
        name: String, path: String, type: Kind, size: Int64, mode: UInt32, permissions: String, owner: String,
        group: String, modifiedAt: Int64, symlinkTarget: String?
    ) {
        self.name = name
        self.path = path
        self.type = type
        self.size = size
        self.mode = mode
        self.permissions = permissions
        self.owner = owner
        self.group = group
        self.modifiedAt = modifiedAt
        self.symlinkTarget = symlinkTarget
    }

    enum CodingKeys: String, CodingKey {
        case name, path, type, size, mode, permissions, owner, group
        case modifiedAt = "modified_at"
        case symlinkTarget = "symlink_target"
    }
}

/// `POST /files/read` body (spec schema `ReadFileRequest`).
public struct ReadFileRequest: Codable, Sendable, Equatable {
    /// Absolute path of a regular file.
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

/// `POST /files/list` body (spec schema `ListDirRequest`).
public struct ListDirRequest: Codable, Sendable, Equatable {
    /// Absolute directory path.
    public var path: String
    /// Levels to descend: 0 and 1 mean immediate children.
    public var depth: Int?

    public init(path: String, depth: Int? = nil) {
        self.path = path
        self.depth = depth
    }
}

/// `POST /files/list` answer (spec schema `ListDirResponse`).
public struct ListDirResponse: Codable, Sendable, Equatable {
    /// Entries, parents before their children.
    public var entries: [FileEntry]

    public init(entries: [FileEntry]) {
        self.entries = entries
    }
}

/// `POST /files/mkdir` body (spec schema `MakeDirRequest`), plus the owner.
public struct MakeDirRequest: Codable, Sendable, Equatable {
    /// Absolute directory path; missing parents are created.
    public var path: String
    /// Owner of created directories (default: the capsule's default user).
    public var user: String?

    public init(path: String, user: String? = nil) {
        self.path = path
        self.user = user
    }
}

/// `POST /files/mkdir` answer (spec schema `MakeDirResponse`).
public struct MakeDirResponse: Codable, Sendable, Equatable {
    /// The created directory.
    public var entry: FileEntry

    public init(entry: FileEntry) {
        self.entry = entry
    }
}

/// `POST /files/remove` body (spec schema `RemoveRequest`).
public struct RemoveRequest: Codable, Sendable, Equatable {
    /// Absolute path; directories are removed recursively.
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

/// `POST /files/stat` body.
public struct StatRequest: Codable, Sendable, Equatable {
    /// Absolute path (a symlink is described, not followed).
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

/// `POST /files/move` body.
public struct MoveRequest: Codable, Sendable, Equatable {
    /// Absolute source path.
    public var source: String
    /// Absolute destination path (its parent must exist).
    public var destination: String

    public init(source: String, destination: String) {
        self.source = source
        self.destination = destination
    }
}

/// Answer carrying one entry: `stat`, `move` and `write`.
public struct FileEntryResponse: Codable, Sendable, Equatable {
    /// The entry.
    public var entry: FileEntry

    public init(entry: FileEntry) {
        self.entry = entry
    }
}
