import Foundation

/// Writes files so a crash or Ctrl-C never leaves a half-written one: data goes to a temporary file
/// in the same folder, is flushed, then renamed over the target. What is not a regular file is never
/// replaced by one: a device, FIFO or socket (`/dev/stdout`, `/dev/null`, a named pipe) is written
/// through, and a symbolic link's target is replaced, the link kept.
public enum AtomicFile {
    /// "a device", "a FIFO" or "a socket" when `path` (its links followed) is one; nil otherwise.
    public static func specialKind(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        default: return nil
        }
    }

    /// `path`, or the file it links to where it is a symbolic link (resolved as far as it resolves):
    /// what a writer replaces so that the link stays a link.
    public static func linkTarget(_ path: String) -> String {
        var link = stat()
        guard lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK, let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    public static func write(_ data: Data, to path: String) throws {
        if let kind = specialKind(path) {
            guard let h = FileHandle(forWritingAtPath: path) else { throw DataError.cannotWrite(path, reason: "cannot open \(kind) for writing") }
            defer { try? h.close() }
            do { try h.write(contentsOf: data) } catch { throw DataError.cannotWrite(path, reason: "writing to \(kind) failed: \(error.localizedDescription)") }
            return
        }
        let path = linkTarget(path)  // the link's target is replaced, the link kept
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw DataError.cannotWrite(path, reason: "cannot create the folder \(dir.path)")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw DataError.cannotWrite(path, reason: "cannot create a file in \(dir.path) (permissions?)")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw DataError.cannotWrite(path, reason: "writing \(data.count) bytes failed (disk full?)")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let e = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw DataError.cannotWrite(path, reason: e)
        }
    }

    /// True when both paths name one existing file (same device and inode), or the same path.
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
    }

    public static func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }
}
