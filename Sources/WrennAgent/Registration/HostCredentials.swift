import Foundation
import WrennImage

/// What the agent keeps after registering with a control plane, in `<data>/agent/host-credentials.json` (mode 0600):
/// its host id, the host JWT (`X-Host-Token`), the rotating refresh token, and the bearer token the control plane
/// presents to this agent.
public struct HostCredentials: Codable, Sendable, Equatable {
    public var controlPlaneURL: String
    public var hostID: String
    public var token: String
    public var refreshToken: String
    public var agentToken: String

    enum CodingKeys: String, CodingKey {
        case controlPlaneURL = "control_plane_url", hostID = "host_id", token, refreshToken = "refresh_token", agentToken = "agent_token"
    }

    /// The file inside a data directory.
    public static func path(dataDirectory: String) -> String { dataDirectory + "/agent/host-credentials.json" }

    /// The saved credentials, or nil when there are none (or they cannot be read).
    public static func load(path: String) -> HostCredentials? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(HostCredentials.self, from: data)
    }

    /// Writes the file atomically and durably with mode 0600 (`DurableFile`: the secret is never readable by others,
    /// not even briefly).
    public func save(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try DurableFile.write(try encoder.encode(self), to: path, permissions: 0o600)
    }

    /// When the host JWT expires (its `exp` claim), if readable.
    public var tokenExpiry: Date? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var payload = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while payload.count % 4 != 0 { payload += "=" }
        guard let data = Data(base64Encoded: payload),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let exp = object["exp"] as? NSNumber else { return nil }
        return Date(timeIntervalSince1970: exp.doubleValue)
    }
}

/// A registration or credential problem.
public struct RegistrationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
