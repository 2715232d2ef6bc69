import Foundation

/// Input rules shared by the account services; each returns the normalized value or throws a 400 naming the field.
enum Validation {
    /// Trimmed, lowercased; one `@` with text on both sides; no spaces or control characters; ≤ 254 chars.
    static func email(_ raw: String, field: String = "email") throws -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f })
        else { throw ServiceError.invalid("\(field): not a valid email address") }
        return email
    }

    /// At least 8 characters, at most 1024.
    static func password(_ password: String, field: String = "password") throws {
        guard password.count >= 8 else { throw ServiceError.invalid("\(field): must be at least 8 characters") }
        guard password.count <= 1024 else { throw ServiceError.invalid("\(field): must be at most 1024 characters") }
    }

    /// A person's display name: trimmed, 1–100 characters, no control characters.
    static func personName(_ raw: String, field: String = "name") throws -> String {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 100 else { throw ServiceError.invalid("\(field): must be 1–100 characters") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ServiceError.invalid("\(field): must not contain control characters")
        }
        return name
    }

    /// Team names: trimmed, 1–128 of letters, digits, space, `_`, `-`, `@`, `'` (the original's rule, a superset of the
    /// spec's description so default team names such as "Ana's Team" are valid too).
    static func teamName(_ raw: String, field: String = "name") throws -> String {
        let name = raw.trimmingCharacters(in: .whitespaces)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-@'")
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ allowed.contains($0) }) else {
            throw ServiceError.invalid("\(field): must be 1–128 characters of letters, digits, space, _ - @ '")
        }
        return name
    }

    /// The default team's name for a user: "<name>'s Team", with characters a team name cannot hold dropped.
    static func defaultTeamName(for personName: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-@'")
        let base = String(personName.filter { allowed.contains($0) }.prefix(100)).trimmingCharacters(in: .whitespaces)
        if base.isEmpty { return "My Team" }
        return base + "'s Team"
    }
}
