import Foundation

/// Work done on files, kept by the files' bytes: one cache file maps a file's content hash to what
/// the work found in it (a small blob), under a settings string that names how the work was done.
/// A cache made with other settings is not used. The file is written atomically; one that does
/// not read back whole, checksummed and with the same settings is reported (`problem`) and
/// rebuilt, never trusted.
///
///     "FERCACHE" | u32 version | u32 n + settings (UTF-8) | u32 entries
///     | entries x (u64 content hash | u32 n + blob) | u64 FNV-1a of everything before
public struct KeyedCache: Sendable {
    public let path: String
    public let settings: String
    public private(set) var entries: [UInt64: [UInt8]] = [:]
    /// Why the file at `path` was not used, when it existed but was unusable.
    public private(set) var problem: String?
    static let magic = Array("FERCACHE".utf8), version: UInt32 = 1

    /// The cache at `path`, loaded if it is whole and was made with `settings`; empty otherwise.
    public init(path: String, settings: String) {
        self.path = path
        self.settings = settings
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let data = FileManager.default.contents(atPath: path) else { problem = "cannot read it"; return }
        do { entries = try Self.decode([UInt8](data), settings: settings) } catch let e as CacheProblem { problem = e.reason } catch { problem = "\(error)" }
    }

    public subscript(key: UInt64) -> [UInt8]? {
        get { entries[key] }
        set { entries[key] = newValue }
    }

    /// Writes the cache (atomically).
    public func save() throws { try AtomicFile.write(Data(encoded()), to: path) }

    func encoded() -> [UInt8] {
        var out = Self.magic
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(Int(Self.version))
        let s = Array(settings.utf8)
        u32(s.count); out += s
        u32(entries.count)
        for key in entries.keys.sorted() {
            let blob = entries[key]!
            u64(key); u32(blob.count); out += blob
        }
        u64(contentHash(Data(out)))
        return out
    }

    struct CacheProblem: Error { var reason: String }

    static func decode(_ bytes: [UInt8], settings: String) throws -> [UInt64: [UInt8]] {
        var at = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, at + n <= bytes.count else { throw CacheProblem(reason: "truncated at byte \(at)") }
            defer { at += n }
            return bytes[at ..< at + n]
        }
        func u32() throws -> Int { Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        func u64() throws -> UInt64 { try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        guard bytes.count >= magic.count + 8, Array(bytes[0 ..< magic.count]) == magic else { throw CacheProblem(reason: "not a swift-fer cache file") }
        let body = bytes.count - 8
        at = body
        guard try u64() == contentHash(Data(bytes[0 ..< body])) else { throw CacheProblem(reason: "checksum mismatch (damaged or cut short)") }
        at = magic.count
        guard try u32() == Int(version) else { throw CacheProblem(reason: "written by another version") }
        guard String(decoding: try take(try u32()), as: UTF8.self) == settings else { throw CacheProblem(reason: "made with other settings") }
        var entries: [UInt64: [UInt8]] = [:]
        for _ in 0 ..< (try u32()) {
            let key = try u64()
            entries[key] = Array(try take(try u32()))
        }
        guard at == body else { throw CacheProblem(reason: "\(body - at) stray bytes before the checksum") }
        return entries
    }

    /// The folder for caches: $XDG_CACHE_HOME/swift-fer, else ~/.cache/swift-fer.
    public static var defaultFolder: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return (base as NSString).appendingPathComponent("swift-fer")
    }
}
