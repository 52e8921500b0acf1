import ArgumentParser
import FERData
import FERIO
import Foundation

struct Folds: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Person-disjoint cross-validation folds of labelled photo folders (links, no copies).",
        discussion: """
        Pools every labelled photo under the given folders (emotion sub-folders, train/ and val/
        included) and deals the people to --folds folds: every photo of one person (the file name
        without its number: Tim_Henman_0001.jpg is Tim_Henman) in one fold, rarest expressions
        first so that each fold holds a similar share of each. Writes, for fold K,
        OUT/fold-K/train/<emotion>/ (the other folds) and OUT/fold-K/val/<emotion>/ (this fold)
        as symbolic links to the photos, and OUT/folds.json with every fold's counts. Then:
          fer train --photos OUT/fold-1 ... ; fer evaluate --photos OUT/fold-1/val
        """)

    @Argument(help: "Labelled photo folders to pool.") var sources: [String]
    @Option(help: "Number of folds.") var folds = 5
    @Option(help: "Seed of the deal.") var seed: UInt64 = 1
    @Option(help: "Folder to write the folds into (must not exist yet).") var out: String
    @Flag(help: "Print the counts as JSON.") var json = false

    func validate() throws {
        guard (2...20).contains(folds) else { throw ValidationError("--folds must be 2-20, got \(folds)") }
        guard !sources.isEmpty else { throw ValidationError("give at least one labelled photo folder") }
        if FileManager.default.fileExists(atPath: out) { throw ValidationError("--out \(out) exists; folds are written into a new folder") }
    }

    struct Counts: Codable { var fold: Int; var people: Int; var photos: Int; var perExpression: [String: Int] }

    func run() throws {
        var photos: [(path: String, label: Int)] = []
        for source in sources {
            let splits = ["train", "val"].map { (source as NSString).appendingPathComponent($0) }.filter { FileManager.default.fileExists(atPath: $0) }
            for folder in splits.isEmpty ? [source] : splits {
                photos += try ImageFolder.labelledImages(in: folder).map { (URL(fileURLWithPath: $0.path).standardizedFileURL.path, $0.label) }
            }
        }
        let fold = PersonFolds.assign(photos, folds: folds, seed: seed)
        // Written beside the target and renamed into place: a failed run leaves no half set of folds.
        let staging = out + ".partial-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        var used = Set<String>()
        for (i, p) in photos.enumerated() {
            let emotion = Emotion(rawValue: p.label)!.folderName
            var name = (p.path as NSString).lastPathComponent
            while !used.insert("\(emotion)/\(name)").inserted { name = "dup-" + name }  // two sources, one file name
            for k in 0..<folds {
                let dir = "\(staging)/fold-\(k + 1)/\(k == fold[i] ? "val" : "train")/\(emotion)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: p.path)
            }
        }
        let counts = (0..<folds).map { k -> Counts in
            let members = photos.indices.filter { fold[$0] == k }
            return Counts(fold: k + 1, people: Set(members.map { PersonFolds.person(of: photos[$0].path) }).count, photos: members.count,
                          perExpression: Dictionary(grouping: members) { Emotion(rawValue: photos[$0].label)!.folderName }.mapValues(\.count))
        }
        try AtomicFile.write(Data(try JSONEncoder.sorted.encode(counts)), to: staging + "/folds.json")
        guard rename(staging, out) == 0 else { throw DataError.cannotWrite(out, reason: String(cString: strerror(errno))) }
        if json { try printJSON(counts); return }
        print("\(photos.count) photos of \(Set(photos.map { PersonFolds.person(of: $0.path) }).count) people in \(folds) person-disjoint folds -> \(out)")
        let names = Emotion.allCases.map(\.folderName)
        print("fold  people  photos  " + names.map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined())
        for c in counts {
            print(String(format: "%4d  %6d  %6d  ", c.fold, c.people, c.photos) + names.map { String(c.perExpression[$0] ?? 0).padding(toLength: 9, withPad: " ", startingAt: 0) }.joined())
        }
    }
}
