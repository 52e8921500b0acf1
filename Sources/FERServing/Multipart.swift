import Foundation

/// The file in a `multipart/form-data` body (RFC 7578), which is how an HTML form or `curl -F`
/// uploads a photo. Only what an upload needs: the boundary, the parts, and their headers.
public enum Multipart {
    public struct Part: Sendable {
        public var name: String?
        public var filename: String?
        public var contentType: String?
        public var body: [UInt8]
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type, else nil.
    public static func boundary(contentType: String) -> String? {
        let fields = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let kind = fields.first, kind.lowercased() == "multipart/form-data" else { return nil }
        for f in fields.dropFirst() {
            let kv = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var v = kv[1].trimmingCharacters(in: .whitespaces)
            if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") { v = String(v.dropFirst().dropLast()) }
            // RFC 2046: 1 to 70 characters.
            return (1...70).contains(v.utf8.count) ? v : nil
        }
        return nil
    }

    /// The parts of `body`; nil when it is not well-formed multipart with this boundary.
    public static func parts(_ body: [UInt8], boundary: String) -> [Part]? {
        let delimiter = Array(("--" + boundary).utf8)
        let crlf: [UInt8] = [13, 10]
        guard var at = find(delimiter, in: body, from: 0) else { return nil }
        var parts: [Part] = []
        while true {
            at += delimiter.count
            // "--" after a delimiter closes the body.
            if at + 1 < body.count, body[at] == 45, body[at + 1] == 45 { return parts }
            guard let headerStart = find(crlf, in: body, from: at).map({ $0 + 2 }),
                  let headerEnd = find(crlf + crlf, in: body, from: headerStart) else { return nil }
            let contentStart = headerEnd + 4
            guard let next = find(crlf + delimiter, in: body, from: contentStart) else { return nil }
            var part = Part(name: nil, filename: nil, contentType: nil, body: Array(body[contentStart..<next]))
            let headers = String(decoding: body[headerStart..<headerEnd], as: UTF8.self)
            for line in headers.components(separatedBy: "\r\n") {
                let kv = line.split(separator: ":", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { continue }
                let key = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
                let value = kv[1].trimmingCharacters(in: .whitespaces)
                if key == "content-type" { part.contentType = value }
                if key == "content-disposition" {
                    part.name = parameter("name", in: value)
                    part.filename = parameter("filename", in: value)
                }
            }
            parts.append(part)
            at = next + 2
        }
    }

    /// `key="value"` (or unquoted) from a header value such as `form-data; name="image"`.
    static func parameter(_ key: String, in value: String) -> String? {
        for f in value.split(separator: ";").dropFirst() {
            let kv = f.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == key else { continue }
            var v = kv[1]
            if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    /// The first index of `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                let first = n[0]
                var i = from
                while i <= h.count - n.count {
                    if h[i] == first {
                        var j = 1
                        while j < n.count, h[i + j] == n[j] { j += 1 }
                        if j == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }
}
