import Foundation

/// Problems with input data and output files, each naming the file and, where there is one, the line.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case unreadable(String, reason: String)
    case truncated(String, reason: String)
    case badHeader(String, found: String, expected: String)
    case badRow(String, line: Int, reason: String)
    case emptyFolder(String)
    case corruptImage(String, reason: String)
    case mismatch(String, reason: String)
    case cannotWrite(String, reason: String)
    case notARegularFile(String)

    public var description: String {
        switch self {
        case .missingFile(let f): return "\(f): no such file or folder"
        case .unreadable(let f, let r): return "\(f): cannot read (\(r))"
        case .truncated(let f, let r): return "\(f): file is truncated (\(r))"
        case .badHeader(let f, let found, let expected): return "\(f):1: header is '\(found)', expected '\(expected)'"
        case .badRow(let f, let line, let r): return "\(f):\(line): \(r)"
        case .emptyFolder(let f): return "\(f): folder holds no images"
        case .corruptImage(let f, let r): return "\(f): not a readable image (\(r))"
        case .mismatch(let f, let r): return "\(f): \(r)"
        case .cannotWrite(let f, let r): return "\(f): cannot write (\(r))"
        case .notARegularFile(let f): return "\(f): not a regular file (a folder, device or pipe cannot be read as data)"
        }
    }

    /// Checks that `path` exists and is a regular file (a FIFO would block the reader forever).
    public static func checkReadable(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw DataError.missingFile(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DataError.notARegularFile(path) }
    }
}
