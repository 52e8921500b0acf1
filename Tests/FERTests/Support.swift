import FER
import Foundation
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

/// Paths shared by the tests.
enum Paths {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// ../shared/data beside the checkout (CI has it; tests that need it say so when it is absent).
    static let sharedData = (packageRoot as NSString).appendingPathComponent("../shared/data")
    static let fer2013 = (sharedData as NSString).appendingPathComponent("fer2013/fer2013.csv.gz")
    static let ferplus = (sharedData as NSString).appendingPathComponent("ferplus/fer2013new.csv")
    static var haveFER2013: Bool { FileManager.default.fileExists(atPath: fer2013) }

    static let ferBinary: String = {
        let debug = (packageRoot as NSString).appendingPathComponent(".build/debug/fer")
        return debug
    }()

    static func temporaryDirectory(_ name: String = "t") -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("swift-fer-tests-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Loaded once for all tests that use the real data.
enum SharedFER2013 {
    static let splits: [Split: FaceDataset]? = {
        guard Paths.haveFER2013 else {
            print("note: \(Paths.fer2013) is absent; tests on real FER2013 data are skipped")
            return nil
        }
        return try? FER2013.load(Paths.fer2013)
    }()
}

/// Writes a small FER2013-style CSV; `rows` are (label, pixel values, usage).
func writeCSV(_ path: String, rows: [(String, String, String)], header: String = FER2013.header) {
    let text = ([header] + rows.map { "\($0.0),\($0.1),\($0.2)" }).joined(separator: "\n") + "\n"
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}

func pixelString(_ count: Int = 2304, value: Int = 128) -> String {
    (0..<count).map { _ in String(value) }.joined(separator: " ")
}

/// Runs a command, returning exit status and both outputs; `environment` adds to (or, with a nil
/// value, removes from) this process's variables.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if !environment.isEmpty {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// The bundled models, found as an app finds them (the library's `BundledModels`), so the tests
/// also check that the resource bundle is where the library looks.
enum BundledTestModels {
    static var mtcnn: String { (try? BundledModels.mtcnnWeights) ?? "missing bundled MTCNN weights" }
    static func model(_ name: String) -> String { (try? BundledModels.path(named: name)) ?? "missing bundled model \(name)" }
}
