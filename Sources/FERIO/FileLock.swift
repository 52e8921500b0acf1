import Foundation

/// Runs `body` holding an exclusive lock (a blocking flock) on `path`, created if needed, so that
/// processes sharing a file take turns: read it, work, write it back, with no update lost to another
/// process's write in between. Where no lock file can be made (a read-only folder), `body` runs
/// unlocked: the lock orders updates, it is not needed to read.
public func withFileLock<T>(_ path: String, _ body: () throws -> T) rethrows -> T {
    try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return try body() }
    defer { close(fd) }  // closing releases the lock
    while flock(fd, LOCK_EX) != 0, errno == EINTR {}
    return try body()
}
