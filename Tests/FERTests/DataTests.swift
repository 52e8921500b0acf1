import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

@Suite("Data loading and bad input") struct DataTests {
    let dir = Paths.temporaryDirectory("data")

    func expectError(_ expected: (DataError) -> Bool, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let e as DataError {
            #expect(expected(e), "unexpected error: \(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func parsesAValidCSV() throws {
        let path = dir + "/ok.csv"
        writeCSV(path, rows: [("3", pixelString(value: 0), "Training"), ("6", pixelString(value: 255), "PublicTest"), ("0", pixelString(), "PrivateTest")])
        let d = try FER2013.load(path)
        #expect(d[.training]!.labels == [3])
        #expect(d[.publicTest]!.images.allSatisfy { $0 == 255 })
        #expect(d[.privateTest]!.count == 1)
        #expect(d[.publicTest]!.rowNumbers == [1])
    }

    @Test func wrongPixelCountNamesFileAndLine() {
        let path = dir + "/short.csv"
        writeCSV(path, rows: [("3", pixelString(), "Training"), ("3", pixelString(2303), "Training")])
        expectError({ $0 == .badRow(path, line: 3, reason: "2303 pixels, expected 2304 (48x48)") }) { _ = try FER2013.load(path) }
    }

    @Test func badLabel() {
        let path = dir + "/label.csv"
        writeCSV(path, rows: [("9", pixelString(), "Training")])
        expectError({ if case .badRow(path, 2, let r) = $0 { return r.contains("outside 0-6") }; return false }) { _ = try FER2013.load(path) }
    }

    @Test func unknownUsage() {
        let path = dir + "/usage.csv"
        writeCSV(path, rows: [("1", pixelString(), "Validation")])
        expectError({ if case .badRow(path, 2, let r) = $0 { return r.contains("unknown Usage 'Validation'") }; return false }) { _ = try FER2013.load(path) }
    }

    @Test func pixelOutOfRange() {
        let path = dir + "/range.csv"
        writeCSV(path, rows: [("1", pixelString(2303) + " 256", "Training")])
        expectError({ if case .badRow(_, 2, let r) = $0 { return r.contains("256") }; return false }) { _ = try FER2013.load(path) }
    }

    @Test func badHeader() {
        let path = dir + "/header.csv"
        writeCSV(path, rows: [], header: "label,image")
        expectError({ if case .badHeader = $0 { return true }; return false }) { _ = try FER2013.load(path) }
    }

    @Test func missingFile() {
        expectError({ $0 == .missingFile(dir + "/nope.csv") }) { _ = try FER2013.load(dir + "/nope.csv") }
    }

    @Test func truncatedGzip() throws {
        let path = dir + "/t.csv"
        writeCSV(path, rows: (0..<50).map { _ in ("2", pixelString(), "Training") })
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gz.arguments = ["-kf", path]
        try gz.run(); gz.waitUntilExit()
        let full = FileManager.default.contents(atPath: path + ".gz")!
        _ = FileManager.default.createFile(atPath: dir + "/cut.csv.gz", contents: full.prefix(full.count / 2))
        expectError({ if case .truncated(_, _) = $0 { return true }; return false }) { _ = try FER2013.load(dir + "/cut.csv.gz") }
        #expect(try FER2013.load(path + ".gz")[.training]!.count == 50)
    }

    @Test func truncatedLastRow() {
        let path = dir + "/cutrow.csv"
        let text = FER2013.header + "\n0," + pixelString() + ",Training\n1," + pixelString(1000)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        expectError({ if case .badRow(_, 3, let r) = $0 { return r.contains("1000 pixels") }; return false }) { _ = try FER2013.load(path) }
    }

    func makeFolder(_ root: String, corrupt: Bool = false) throws {
        for (split, emotions) in [("train", ["happy", "sad"]), ("test", ["angry"])] {
            for e in emotions {
                let d = "\(root)/\(split)/\(e)"
                try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
                for i in 0..<3 {
                    let img = Image(width: 60, height: 60, channels: 3, fill: UInt8(40 * i))
                    try img.write("\(d)/\(i).png")
                }
            }
        }
        if corrupt { _ = FileManager.default.createFile(atPath: "\(root)/train/sad/broken.png", contents: Data("not a png".utf8)) }
    }

    @Test func imageFolderLayout() throws {
        let root = dir + "/folders"
        try makeFolder(root)
        let d = try ImageFolder.load(root)
        #expect(d[.training]!.count == 6)
        #expect(d[.training]!.side == 48)
        #expect(Set(d[.training]!.labels) == [Emotion.happy.rawValue, Emotion.sad.rawValue])
        #expect(d[.privateTest]!.labels == [0, 0, 0])
        #expect(d[.publicTest] == nil)
    }

    @Test func corruptImageNamesTheFile() throws {
        let root = dir + "/corrupt"
        try makeFolder(root, corrupt: true)
        expectError({ if case .corruptImage(let f, _) = $0 { return f.hasSuffix("train/sad/broken.png") }; return false }) { _ = try ImageFolder.load(root) }
    }

    @Test func emptyFolder() throws {
        let root = dir + "/empty"
        try FileManager.default.createDirectory(atPath: root + "/train/happy", withIntermediateDirectories: true)
        expectError({ if case .emptyFolder = $0 { return true }; return false }) { _ = try ImageFolder.load(root) }
    }

    @Test func ferPlusRelabels() throws {
        let csv = dir + "/fp.csv"
        writeCSV(csv, rows: [("0", pixelString(), "Training"), ("0", pixelString(), "Training"), ("0", pixelString(), "Training")])
        let fp = dir + "/fernew.csv"
        let text = """
        Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
        Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0
        Training,,4,6,0,0,0,0,0,0,0,0
        Training,fer0000002.png,5,0,0,0,0,0,0,0,0,5

        """
        _ = FileManager.default.createFile(atPath: fp, contents: Data(text.utf8))
        let plus = try FERPlus.load(fp)
        let train = try FER2013.load(csv)[.training]!
        let major = try plus.relabel(train, mode: .majority)
        #expect(major.labels == [Emotion.happy.rawValue])       // row 2 unnamed; row 3 ties with not-a-face
        let dist = try plus.relabel(train, mode: .distribution)
        #expect(dist.labels == [Emotion.happy.rawValue, Emotion.neutral.rawValue])
        #expect(dist.targets![6 + 7 * 0] == 0 && dist.targets![3] == 1)
    }

    @Test func ferPlusBadVotes() throws {
        let fp = dir + "/badfp.csv"
        _ = FileManager.default.createFile(atPath: fp, contents: Data("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\nTraining,a.png,x,0,0,0,0,0,0,0,0,0\n".utf8))
        expectError({ if case .badRow(_, 2, _) = $0 { return true }; return false }) { _ = try FERPlus.load(fp) }
    }

    @Test func realFER2013Splits() throws {
        guard let d = SharedFER2013.splits else { return }
        #expect(d[.training]!.count == 28709)
        #expect(d[.publicTest]!.count == 3589)
        #expect(d[.privateTest]!.count == 3589)
        #expect(d[.training]!.classCounts == [3995, 436, 4097, 7215, 4830, 3171, 4965])
        #expect(d[.privateTest]!.classCounts == [491, 55, 528, 879, 594, 416, 626])
    }

    @Test func realFERPlusJoins() throws {
        guard let d = SharedFER2013.splits, FileManager.default.fileExists(atPath: Paths.ferplus) else { return }
        let plus = try FERPlus.load(Paths.ferplus)
        #expect(plus.votes.count == 35887)
        let t = try plus.relabel(d[.training]!, mode: .majority)
        #expect(t.count > 24000 && t.count < 28709 - 148)
    }

    @Test func augmentationIsSeededAndInRange() {
        var src = [UInt8](repeating: 0, count: 48 * 48)
        for i in 0..<src.count { src[i] = UInt8(i % 251) }
        var a = [Float](repeating: 0, count: 44 * 44), b = a, c = a
        var r1 = SplitMix64(seed: 5), r2 = SplitMix64(seed: 5), r3 = SplitMix64(seed: 6)
        let aug = Augmentation()
        src.withUnsafeBufferPointer { s in
            aug.apply(s.baseAddress!, side: 48, into: &a, size: 44, rng: &r1)
            aug.apply(s.baseAddress!, side: 48, into: &b, size: 44, rng: &r2)
            aug.apply(s.baseAddress!, side: 48, into: &c, size: 44, rng: &r3)
        }
        #expect(a == b)
        #expect(a != c)
        #expect(a.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func evaluationViewsCropAndMirror() {
        var src = [UInt8](repeating: 0, count: 48 * 48)
        for y in 0..<48 { for x in 0..<48 { src[y * 48 + x] = UInt8(x) } }
        var centre = [Float](repeating: 0, count: 40 * 40), mirror = centre
        src.withUnsafeBufferPointer { s in
            Augmentation.evalView(s.baseAddress!, side: 48, into: &centre, size: 40, view: 0)
            Augmentation.evalView(s.baseAddress!, side: 48, into: &mirror, size: 40, view: 1)
        }
        #expect(centre[0] == Float(4) / 255)
        #expect(mirror[0] == Float(43) / 255)
    }
}

/// Issue 37: an emotion folder that is a link to a folder of photos is read like any other (it was
/// silently left out), and a link loop below it ends.
@Suite("Linked photo folders") struct LinkedPhotoFolderTests {
    @Test func linkedEmotionFoldersAreFollowedAndLoopsEnd() throws {
        let root = Paths.temporaryDirectory("links"), elsewhere = Paths.temporaryDirectory("links-target")
        try FileManager.default.createDirectory(atPath: root + "/sad", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere + "/inner", withIntermediateDirectories: true)
        for p in [elsewhere + "/a.png", elsewhere + "/inner/b.png", root + "/sad/c.png"] {
            try Image(width: 8, height: 8, channels: 1, fill: 100).write(p)
        }
        try FileManager.default.createSymbolicLink(atPath: root + "/happy", withDestinationPath: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: elsewhere + "/inner/loop", withDestinationPath: elsewhere)  // a loop
        try FileManager.default.createSymbolicLink(atPath: root + "/sad/gone.png", withDestinationPath: root + "/nothing.png")  // dangling
        let found = try ImageFolder.labelledImages(in: root)
        #expect(found.map { ($0.path as NSString).lastPathComponent } == ["a.png", "b.png", "c.png"])
        #expect(found.map(\.label) == [Emotion.happy.rawValue, Emotion.happy.rawValue, Emotion.sad.rawValue])
    }
}
