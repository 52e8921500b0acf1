import Foundation

/// An exclusive lock on a run folder (an flock on FOLDER/.lock), so that two processes never write
/// one run's files at once. The kernel drops it when the process ends, however it ends.
public final class RunFolderLock {
    private var fd: Int32

    /// Creates the folder if needed and takes the lock, or throws if another process holds it.
    public init(_ folder: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DataError.unreadable(folder, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        let path = (folder as NSString).appendingPathComponent(".lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DataError.unreadable(path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            fd = -1
            throw DataError.mismatch(folder, reason: "another process is using this run folder (its .lock is held)")
        }
    }

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
