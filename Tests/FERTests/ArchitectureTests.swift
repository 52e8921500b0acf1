import Foundation
import Testing
@testable import FERVision

/// Issue 35: each concept in one place. What differs between detectors is a property of the kind,
/// and no code outside the vision module tells kinds apart by name.
@Suite("One concept, one place") struct ArchitectureTests {
    /// Every kind and what it can do: a new detector is a new row here and a new case in
    /// `DetectorKind`, whose switches the compiler then walks the author through.
    @Test func everyDetectorKindSaysWhatItCan() {
        struct Row: Equatable { var landmarks, precision, cascadeOptions: Bool; var framing: CropFraming; var window: Int }
        let expected: [DetectorKind: Row] = [
            .mtcnn: Row(landmarks: true, precision: true, cascadeOptions: false, framing: .mtcnn, window: 12),
            .haar: Row(landmarks: false, precision: false, cascadeOptions: true, framing: .cascade, window: 24),
            .haarAlt2: Row(landmarks: false, precision: false, cascadeOptions: true, framing: .cascade, window: 20),
            .lbp: Row(landmarks: false, precision: false, cascadeOptions: true, framing: .cascade, window: 24),
        ]
        #expect(Set(expected.keys) == Set(DetectorKind.allCases))
        for kind in DetectorKind.allCases {
            let row = Row(landmarks: kind.findsLandmarks, precision: kind.hasPrecision, cascadeOptions: kind.takesCascadeOptions,
                          framing: kind.calibratedFraming, window: kind.searchWindow)
            #expect(row == expected[kind], "\(kind)")
        }
    }

    /// `== .mtcnn` (or any kind by name) outside Sources/FERVision is what this rule replaced.
    @Test func noCodeOutsideVisionTellsDetectorsApartByName() throws {
        let sources = (Paths.packageRoot as NSString).appendingPathComponent("Sources")
        let byName = try NSRegularExpression(pattern: #"[!=]=\s*\.(mtcnn|haar|haarAlt2|lbp)\b|case\s+\.(mtcnn|haar|haarAlt2|lbp)\b"#)
        var found: [String] = []
        for case let file as String in FileManager.default.enumerator(atPath: sources)! where file.hasSuffix(".swift") && !file.hasPrefix("FERVision/") {
            let text = try String(contentsOfFile: (sources as NSString).appendingPathComponent(file), encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where byName.firstMatch(in: String(line), range: NSRange(line.startIndex..., in: line)) != nil {
                found.append("\(file):\(n + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(found.isEmpty, "detector kinds told apart by name outside FERVision:\n\(found.joined(separator: "\n"))")
    }

    /// `FER`'s public surface is what an app needs: the recognizer, its settings and answers, the
    /// bundled models. Helpers for `fer` itself are `package`. A new public symbol shows here, and is
    /// added on purpose or made `package`.
    @Test func theFrontDoorExportsWhatAnAppNeedsAndNoMore() throws {
        let expected: Set<String> = [
            "BundledModels",
            "BundledModels.defaultModel",
            "BundledModels.defaultModelVariable",
            "BundledModels.directory",
            "BundledModels.displayName",
            "BundledModels.mtcnnWeights",
            "BundledModels.names",
            "BundledModels.path",
            "BundledModels.resolve",
            "DetectorKind",
            "DetectorSettings",
            "ExpressionRecognizer",
            "ExpressionRecognizer.Configuration",
            "ExpressionRecognizer.Configuration.detector",
            "ExpressionRecognizer.Configuration.detectorPrecision",
            "ExpressionRecognizer.Configuration.init",
            "ExpressionRecognizer.Configuration.model",
            "ExpressionRecognizer.Configuration.precision",
            "ExpressionRecognizer.Configuration.problem",
            "ExpressionRecognizer.Configuration.reading",
            "ExpressionRecognizer.Configuration.threads",
            "ExpressionRecognizer.card",
            "ExpressionRecognizer.classNames",
            "ExpressionRecognizer.configuration",
            "ExpressionRecognizer.detectorSettings",
            "ExpressionRecognizer.detectorSummary",
            "ExpressionRecognizer.expression",
            "ExpressionRecognizer.faces",
            "ExpressionRecognizer.init",
            "ExpressionRecognizer.modelPath",
            "ExpressionRecognizer.precision",
            "FaceBox",
            "FaceReading",
            "FaceResult",
            "Image",
            "ModelCard",
            "Precision",
            "PrecisionChoice",
            "PrecisionUnavailable",
            "RecognizerError",
            "RecognizerError.description",
            "TestTimeAugmentation",
        ]
        #expect(try Self.publicSymbols(ofTarget: "FER") == expected)
    }

    /// `Container.member` for each `public` declaration of a target's sources (by indentation, as
    /// the code is formatted), and the types it re-exports.
    static func publicSymbols(ofTarget target: String) throws -> Set<String> {
        let folder = (Paths.packageRoot as NSString).appendingPathComponent("Sources/\(target)")
        let typeLine = try NSRegularExpression(pattern: #"^\s*(?:public |package |private |fileprivate )?(?:final )?(?:class|struct|enum|extension|protocol)\s+([A-Za-z_][\w.]*)"#)
        let publicLine = try NSRegularExpression(pattern: #"^\s*public (?:static |convenience |final )*(?:(?:func|var|let|case|class|struct|enum|protocol)\s+)?([A-Za-z_]\w*)"#)
        let export = try NSRegularExpression(pattern: #"^@_exported import \w+ [\w]+\.(\w+)"#)
        func capture(_ re: NSRegularExpression, _ s: String) -> String? {
            guard let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)), let r = Range(m.range(at: 1), in: s) else { return nil }
            return String(s[r])
        }
        var symbols = Set<String>()
        for file in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() where file.hasSuffix(".swift") {
            var stack: [(indent: Int, name: String)] = []
            for line in try String(contentsOfFile: (folder as NSString).appendingPathComponent(file), encoding: .utf8).split(separator: "\n").map(String.init) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                let indent = line.prefix { $0 == " " }.count
                if !trimmed.isEmpty, !trimmed.hasPrefix("//") { while let top = stack.last, top.indent >= indent { stack.removeLast() } }
                if let name = capture(export, line) { symbols.insert(name); continue }
                if trimmed.hasPrefix("public") {
                    let name = trimmed.hasPrefix("public init") || trimmed.hasPrefix("public convenience init") ? "init" : capture(publicLine, line) ?? "?"
                    symbols.insert((stack.map(\.name) + [name]).joined(separator: "."))
                }
                if let type = capture(typeLine, line) { stack.append((indent, type)) }
            }
        }
        return symbols
    }
}
