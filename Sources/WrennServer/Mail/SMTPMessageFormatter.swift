import Foundation

/// Builds the RFC 5322 message text that goes after DATA, and validates what goes into headers.
///
/// Output uses CRLF line endings everywhere, is already dot-stuffed, and ends with the
/// `CRLF . CRLF` terminator, so it can be written to the server as-is.
enum SMTPMessageFormatter {
    /// Longest line (without CRLF) allowed by RFC 5321/5322.
    static let maxLineLength = 998
    /// Longest encoded word allowed by RFC 2047.
    static let maxEncodedWordLength = 75
    /// Longest ASCII subject sent verbatim; longer ones are sent as folded encoded words.
    static let maxVerbatimSubjectLength = 900

    struct Message {
        var fromAddress: String
        var fromName: String?
        var toAddress: String
        var subject: String
        var textBody: String
        var date: Date
        var messageID: String
    }

    // MARK: validation

    /// Validates an envelope/header address. Only plain ASCII `local@domain` forms are accepted:
    /// no display names, no quoted local parts, no SMTPUTF8.
    static func checkAddress(_ address: String, field: String) throws(SMTPError) {
        func fail(_ reason: String) -> SMTPError {
            .invalidAddress(field: field, address: address, reason: reason)
        }
        if address.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw .headerInjection(field: "\(field) address")
        }
        if address.isEmpty { throw fail("it is empty") }
        if address.utf8.count > 254 { throw fail("it is longer than 254 bytes") }
        for scalar in address.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F { throw fail("it contains a control character") }
            if scalar.value > 0x7F { throw fail("non-ASCII addresses (SMTPUTF8) are not supported") }
            if scalar == " " || scalar == "\t" { throw fail("it contains whitespace") }
            if "<>()[]\\,;:\"".unicodeScalars.contains(scalar) {
                throw fail("it contains the character '\(scalar)'")
            }
        }
        guard let at = address.lastIndex(of: "@") else { throw fail("it has no '@'") }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        if local.isEmpty { throw fail("the local part is empty") }
        if local.utf8.count > 64 { throw fail("the local part is longer than 64 bytes") }
        if local.contains("@") { throw fail("it has more than one '@'") }
        if domain.isEmpty { throw fail("the domain is empty") }
        if domain.hasPrefix(".") || domain.hasSuffix(".") || domain.contains("..") {
            throw fail("the domain is malformed")
        }
        if local.hasPrefix(".") || local.hasSuffix(".") || local.contains("..") {
            throw fail("the local part is malformed")
        }
    }

    /// Validates free text that goes into a header (subject, display name).
    static func checkHeaderText(_ text: String, field: String) throws(SMTPError) {
        for scalar in text.unicodeScalars {
            if scalar == "\r" || scalar == "\n" {
                throw .headerInjection(field: field)
            }
        }
        for scalar in text.unicodeScalars where (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F {
            throw .invalidHeaderValue(field: field, reason: "it contains the control character U+\(String(scalar.value, radix: 16, uppercase: true))")
        }
    }

    // MARK: rendering

    /// The complete DATA payload: headers, blank line, body, dot-stuffed, terminated by `.CRLF`.
    static func render(_ message: Message) -> [UInt8] {
        let (body, transferEncoding) = encodeBody(message.textBody)
        var headers: [String] = []
        headers.append("Date: \(rfc5322Date(message.date))")
        headers.append("From: \(formatMailbox(address: message.fromAddress, name: message.fromName))")
        headers.append("To: \(message.toAddress)")
        headers.append("Subject: \(encodeSubject(message.subject))")
        headers.append("Message-ID: \(message.messageID)")
        headers.append("MIME-Version: 1.0")
        headers.append("Content-Type: text/plain; charset=utf-8")
        headers.append("Content-Transfer-Encoding: \(transferEncoding)")

        var text = headers.joined(separator: "\r\n")
        text += "\r\n\r\n"
        text += body
        return dotStuffAndTerminate(Array(text.utf8))
    }

    /// Doubles a leading "." on every line (RFC 5321 §4.5.2) and appends the end-of-data marker.
    /// Expects CRLF line endings.
    static func dotStuffAndTerminate(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var atLineStart = true
        for byte in bytes {
            if atLineStart && byte == UInt8(ascii: ".") {
                out.append(UInt8(ascii: "."))
            }
            out.append(byte)
            atLineStart = byte == UInt8(ascii: "\n")
        }
        if !out.isEmpty && !(out.count >= 2 && out[out.count - 2] == UInt8(ascii: "\r") && out[out.count - 1] == UInt8(ascii: "\n")) {
            out.append(contentsOf: Array("\r\n".utf8))
        }
        out.append(contentsOf: Array(".\r\n".utf8))
        return out
    }

    /// Normalises line endings to CRLF and picks the transfer encoding: `7bit` for short ASCII
    /// lines, quoted-printable otherwise (works with every server, no 8BITMIME needed).
    static func encodeBody(_ body: String) -> (text: String, transferEncoding: String) {
        let lines = normalizedLines(body)
        let isPlainASCII = lines.allSatisfy { line in
            line.utf8.count <= maxLineLength && line.unicodeScalars.allSatisfy {
                ($0.value >= 0x20 && $0.value < 0x7F) || $0 == "\t"
            }
        }
        if isPlainASCII {
            return (lines.map { $0 + "\r\n" }.joined(), "7bit")
        }
        return (lines.map { quotedPrintable(line: $0) + "\r\n" }.joined(), "quoted-printable")
    }

    /// Splits on CRLF, CR or LF. A trailing line break does not produce an extra empty line.
    static func normalizedLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = scalar == "\r"
            if scalar == "\r" || scalar == "\n" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }

    /// Quoted-printable encoding of one line (RFC 2045 §6.7) with soft breaks at 76 columns.
    static func quotedPrintable(line: String) -> String {
        let bytes = Array(line.utf8)
        var tokens: [String] = []
        tokens.reserveCapacity(bytes.count)
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            let literal =
                (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                || ((byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) && !isLast)
            if literal {
                tokens.append(String(UnicodeScalar(byte)))
            } else {
                tokens.append("=" + hexByte(byte))
            }
        }
        // Soft line breaks: each physical line at most 76 characters including the trailing "=".
        var out = ""
        var column = 0
        for (index, token) in tokens.enumerated() {
            let isLastToken = index == tokens.count - 1
            let limit = isLastToken ? 76 : 75
            if column + token.count > limit {
                out += "=\r\n"
                column = 0
            }
            out += token
            column += token.count
        }
        return out
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".unicodeScalars)
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }

    /// Subject as-is when it is short printable ASCII, otherwise RFC 2047 `B` encoded words folded
    /// onto continuation lines.
    static func encodeSubject(_ subject: String) -> String {
        let isASCII = subject.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F || $0 == "\t" }
        // "=?" in plain text would be mis-read as an encoded word by the receiver; encode it then.
        if isASCII && subject.utf8.count <= maxVerbatimSubjectLength && !subject.contains("=?") {
            return subject
        }
        return encodedWords(subject).joined(separator: "\r\n ")
    }

    /// Display name as a quoted string (ASCII) or encoded words (non-ASCII).
    static func formatMailbox(address: String, name: String?) -> String {
        guard let name, !name.isEmpty else { return address }
        let isASCII = name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
        if isASCII && !name.contains("=?") && name.utf8.count <= 200 {
            var quoted = "\""
            for character in name {
                if character == "\"" || character == "\\" { quoted += "\\" }
                quoted.append(character)
            }
            quoted += "\""
            return "\(quoted) <\(address)>"
        }
        return "\(encodedWords(name).joined(separator: "\r\n ")) <\(address)>"
    }

    /// Splits text into `=?UTF-8?B?…?=` words of at most 75 characters, never splitting a
    /// character (grapheme cluster) across words unless a single one is too long.
    static func encodedWords(_ text: String) -> [String] {
        // "=?UTF-8?B?" + "?=" is 12 characters; 63 base64 characters left → 15 quads → 45 bytes.
        let maxBytes = 45
        var chunks: [[UInt8]] = []
        var current: [UInt8] = []
        func append(_ piece: [UInt8]) {
            if current.count + piece.count > maxBytes, !current.isEmpty {
                chunks.append(current)
                current = []
            }
            current.append(contentsOf: piece)
        }
        for character in text {
            let bytes = Array(String(character).utf8)
            if bytes.count <= maxBytes {
                append(bytes)
            } else {
                for scalar in character.unicodeScalars {
                    append(Array(String(scalar).utf8))
                }
            }
        }
        if !current.isEmpty || chunks.isEmpty { chunks.append(current) }
        return chunks.map { "=?UTF-8?B?" + Data($0).base64EncodedString() + "?=" }
    }

    /// `Sun, 29 Nov 2026 09:51:24 +0000` (RFC 5322 §3.3), always in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = days[((c.weekday ?? 1) - 1 + 7) % 7]
        let month = months[((c.month ?? 1) - 1 + 12) % 12]
        func two(_ value: Int?) -> String {
            let v = value ?? 0
            return v < 10 ? "0\(v)" : "\(v)"
        }
        return "\(weekday), \(two(c.day)) \(month) \(c.year ?? 1970) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) +0000"
    }

    /// `<random@domain-of-sender>`.
    static func makeMessageID(fromAddress: String) -> String {
        let domain = fromAddress.split(separator: "@").last.map(String.init) ?? "localhost"
        return "<\(UUID().uuidString.lowercased())@\(domain)>"
    }
}
