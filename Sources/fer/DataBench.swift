import ArgumentParser
import FERData
import Foundation

struct DataBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Time loading a FER2013 CSV (plain or .gz) or image folder: best of several runs.")

    @Argument(help: "FER2013 CSV (plain or .gz) or image-folder root.") var path: String
    @Option var repeats: Int = 3

    func run() throws {
        var best = Double.infinity, counts = ""
        for _ in 0..<repeats {
            let t0 = Date()
            let splits = try DatasetLoader.load(path)
            best = min(best, Date().timeIntervalSince(t0))
            counts = Split.allCases.map { "\($0.rawValue) \(splits[$0]?.count ?? 0)" }.joined(separator: ", ")
        }
        print(String(format: "%@: %.2f s (best of %d; %@)", path, best, repeats, counts))
    }
}
