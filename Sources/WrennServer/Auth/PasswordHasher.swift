import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// Slow, salted password hashing (bcrypt) run off the event loops.
///
/// Passwords are SHA-256'd first so bcrypt's 72-byte input limit never silently truncates a long password.
/// Verification against a missing hash still spends the bcrypt time, so "no such user" and "wrong password"
/// take the same time.
public struct PasswordHasher: Sendable {
    public let cost: UInt8
    /// A real bcrypt hash of a random string, used to equalize timing when there is nothing to verify against.
    private let decoy: String

    public init(cost: UInt8) {
        self.cost = cost
        self.decoy = Bcrypt.hash(Secrets.randomHex(bytes: 16), cost: cost)
    }

    public func hash(_ password: String) async throws -> String {
        let input = Self.prehash(password)
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    /// True when `password` matches `hash`; when `hash` is nil, spends the same time and returns false.
    public func verify(_ password: String, hash: String?) async throws -> Bool {
        let input = Self.prehash(password)
        let target = hash ?? decoy
        let ok = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: target) }
        return ok && hash != nil
    }

    static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }
}
