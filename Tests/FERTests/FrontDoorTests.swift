import FER
import Foundation
import Testing

/// The library's front door, used as an app uses it: only `import FER`.
@Suite("The front door: ExpressionRecognizer", .serialized) struct FrontDoorTests {
    static let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let faceCrop = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut-face.png")

    static func recognizer() throws -> ExpressionRecognizer {
        var c = ExpressionRecognizer.Configuration()
        c.precision = .fp32  // the same answer on every CPU
        c.detectorPrecision = .fp32
        return try ExpressionRecognizer(c)
    }

    @Test func theBundledDefaultModelLabelsAPhotoFromItsPath() throws {
        let r = try Self.recognizer()
        #expect(r.modelPath.hasSuffix("default/model.safetensors") && r.modelPath.contains("FERBundledModels.resources"),
                "found \(r.modelPath): the models should come from the SwiftPM resource bundle")
        #expect(r.classNames.count == 7)
        let faces = try r.faces(inPhotoAt: Self.photo)
        #expect(faces.count == 1 && faces.first?.emotion == "Happy", "\(faces)")
        #expect(BundledModels.names.contains("default") && BundledModels.names.contains("fast"))
    }

    @Test func pixelsGrayOrRGBAndAReadyFaceGiveTheSameLabel() throws {
        let r = try Self.recognizer()
        let bgr = try Image.read(Self.photo, channels: 3)
        var rgb = bgr.pixels
        for i in stride(from: 0, to: rgb.count, by: 3) { rgb.swapAt(i, i + 2) }
        let fromRGB = try r.faces(inPixels: rgb, width: bgr.width, height: bgr.height, channels: 3)
        let fromImage = try r.faces(in: bgr)
        #expect(fromRGB.count == 1 && fromImage.count == 1)
        #expect(fromRGB.first?.box == fromImage.first?.box && fromRGB.first?.probabilities == fromImage.first?.probabilities,
                "RGB pixels must be read as RGB")
        let gray = try Image.read(Self.photo, channels: 1)
        #expect(try r.faces(inPixels: gray.pixels, width: gray.width, height: gray.height, channels: 1).first?.emotion == "Happy")
        let face = try Image.read(Self.faceCrop, channels: 1).resized(width: 48, height: 48)
        let one = try r.expression(ofFace: face)
        #expect(one.emotion == "Happy" && one.box.width == 48)
    }

    @Test func badInputIsAnErrorThatSaysWhy() throws {
        let r = try Self.recognizer()
        #expect { _ = try r.faces(inPixels: [1, 2, 3], width: 2, height: 2, channels: 1) } throws: { "\($0)".contains("needs 4 bytes, got 3") }
        #expect { _ = try r.faces(inPixels: [], width: 0, height: 0, channels: 3) } throws: { "\($0)".contains("at least 1x1") }
        #expect { _ = try r.faces(inPixels: [0, 0], width: 1, height: 1, channels: 2) } throws: { "\($0)".contains("channels must be 1") }
        #expect { _ = try r.faces(inPhotoAt: "/nonexistent/photo.jpg") } throws: { "\($0)".contains("/nonexistent/photo.jpg") }
        #expect { _ = try ExpressionRecognizer(model: "no-such-model") } throws: { "\($0)".contains("bundled: default, fast, fer2013") }
        var c = ExpressionRecognizer.Configuration()
        c.reading.margin = 3
        #expect { _ = try ExpressionRecognizer(c) } throws: { "\($0)".contains("--margin must be between 0 and 1") }
    }

    /// One recognizer shared by many tasks at once: every answer is the one a lone call gives.
    @Test func oneRecognizerServesManyTasksAtOnce() async throws {
        let r = try Self.recognizer()
        let alone = try await r.faces(inPhotoAt: Self.photo)
        let answers = try await withThrowingTaskGroup(of: [FaceResult].self) { group in
            for _ in 0..<12 { group.addTask { try await r.faces(inPhotoAt: Self.photo) } }
            var all: [[FaceResult]] = []
            for try await a in group { all.append(a) }
            return all
        }
        #expect(answers.count == 12)
        for a in answers { #expect(a.first?.probabilities == alone.first?.probabilities && a.first?.box == alone.first?.box) }
    }
}

/// Each setting has one default, defined once: what `--help` prints is what the command runs,
/// and it is the library's.
@Suite("One default per setting") struct DefaultsTests {
    /// The defaults `fer <command> --help` prints, by option.
    static func helpDefaults(_ command: [String]) throws -> [String: String] {
        let r = try run(Paths.ferBinary, command + ["--help"])
        // Each option's help, its lines joined, then "default: X" from the end of it.
        var texts: [(String, String)] = []
        for line in r.stdout.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("--") { texts.append((String(line.split(separator: " ")[0]), line)) } else if !texts.isEmpty { texts[texts.count - 1].1 += " " + line }
        }
        var out: [String: String] = [:]
        for (option, text) in texts {
            if let range = text.range(of: #"default: [^)]*\)"#, options: .regularExpression) { out[option] = String(text[range].dropFirst(9).dropLast()) }
        }
        return out
    }

    @Test(arguments: [["predict"], ["video"], ["live"], ["serve"], ["evaluate"]])
    func faceCommandsShowTheLibrarysDefaults(command: [String]) throws {
        let c = ExpressionRecognizer.Configuration()
        let shown = try Self.helpDefaults(command)
        let expected: [String: String] = [
            "--precision": c.precision.rawValue, "--detector-precision": c.detectorPrecision.rawValue,
            "--detector": c.detector.kind.rawValue, "--min-size": "\(c.detector.minFace)", "--detect-side": "\(c.detector.maxSide)",
            "--tta": c.reading.tta.rawValue, "--border-retry": "\(c.reading.borderRetry)", "--max-pixels": "\(c.reading.maxPixels)", "--threads": "\(c.threads)",
        ]
        for (option, value) in expected { #expect(shown[option] == value, "fer \(command.joined(separator: " ")) \(option): help says \(shown[option] ?? "nothing")") }
    }

    @Test func oldSpellingsStillWorkAndNameTheNewOnes() throws {
        let old = try run(Paths.ferBinary, ["calibrate-crop", "--help"])
        #expect(old.status == 0 && old.stderr.contains("`fer calibrate-crop` is now `fer calibrate crop`"), "\(old.stderr)")
        let live = try run(Paths.ferBinary, ["live", "--width", "8", "--source", "0"])
        #expect(live.stderr.contains("is now --camera-width") && live.stderr.contains("--camera-width and --camera-height must be 16-8192"), "\(live.stderr)")
        let help = try run(Paths.ferBinary, ["--help"])
        let tools = try #require(help.stdout.range(of: "TOOLS SUBCOMMANDS"))
        #expect(help.stdout[tools.upperBound...].contains("calibrate") && !help.stdout[..<tools.lowerBound].contains("calibrate"))
    }
}

/// Examples/LabelPhotos, an app that depends on swift-fer by path, built and run as its user would.
@Suite("Examples: a package that depends on swift-fer") struct ExamplePackageTests {
    @Test(.timeLimit(.minutes(20))) func labelPhotosBuildsAndLabelsAFolder() throws {
        let root = Paths.packageRoot as NSString
        // The example names the dependency "swift-fer", the name a clone gets; whatever this
        // checkout's folder is called, a link of that name stands in for it.
        let work = root.appendingPathComponent(".build/examples")
        let app = work + "/LabelPhotos"
        let fm = FileManager.default
        try? fm.removeItem(atPath: work + "/swift-fer")
        try fm.createDirectory(atPath: app + "/Sources", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: work + "/swift-fer", withDestinationPath: root as String)
        let source = root.appendingPathComponent("Examples/LabelPhotos")
        let manifest = try String(contentsOfFile: source + "/Package.swift", encoding: .utf8)
        #expect(manifest.contains(#".package(path: "../..")"#))
        try manifest.replacingOccurrences(of: #".package(path: "../..")"#, with: #".package(path: "../swift-fer")"#)
            .write(toFile: app + "/Package.swift", atomically: true, encoding: .utf8)
        try? fm.removeItem(atPath: app + "/Sources/LabelPhotos")
        try fm.copyItem(atPath: source + "/Sources/LabelPhotos", toPath: app + "/Sources/LabelPhotos")
        // SwiftPM refuses unsafeFlags in a package depended on by URL (a path dependency allows them,
        // so the build below cannot show it): the manifest must have none.
        let ours = try String(contentsOfFile: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        #expect(!ours.contains("unsafeFlags"), "Package.swift uses unsafeFlags: apps could not depend on swift-fer by URL")
        let main = try String(contentsOfFile: source + "/Sources/LabelPhotos/main.swift", encoding: .utf8)
        #expect(main.split(separator: "\n").count < 30, "the example should stay under 30 lines")

        let build = try run("/usr/bin/env", ["swift", "build", "--package-path", app])
        #expect(build.status == 0, "\(build.stdout.suffix(2000)) \(build.stderr.suffix(2000))")
        let photos = Paths.temporaryDirectory("example-photos")
        try fm.copyItem(atPath: root.appendingPathComponent("samples/astronaut.png"), toPath: photos + "/astronaut.png")
        try Data("not a photo".utf8).write(to: URL(fileURLWithPath: photos + "/broken.jpg"))
        let r = try run(app + "/.build/debug/LabelPhotos", [photos])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("astronaut.png: Happy"), "\(r.stdout)")
        #expect(r.stdout.contains("broken.jpg: ") && r.stdout.contains("not a readable image"), "a bad file is reported, not skipped: \(r.stdout)")
    }
}
