import Foundation

/// The benchmarks' helper processes (`fer bench-one`, the Python peers in benchmarks/): each prints
/// one JSON line last, which is its answer.
enum PeerProcess {
    /// The last line `executable arguments` prints, decoded; nil if it cannot start, fails or prints
    /// no such line. Its standard error goes to ours unless `quiet`; `environment` replaces ours.
    static func lastJSONLine<T: Decodable>(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                                           quiet: Bool = false) -> T? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = quiet ? FileHandle.nullDevice : FileHandle.standardError
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(line.utf8))
    }

    /// benchmarks/`script` run by `python` (a path, or a name found on PATH).
    static func script<T: Decodable>(_ script: String, _ arguments: [String], python: String, environment: [String: String]? = nil,
                                     quiet: Bool = false) -> T? {
        let path = (Checkout.packageRoot as NSString).appendingPathComponent("benchmarks/\(script)")
        return python.hasPrefix("/") ? lastJSONLine(python, [path] + arguments, environment: environment, quiet: quiet)
            : lastJSONLine("/usr/bin/env", [python, path] + arguments, environment: environment, quiet: quiet)
    }
}
