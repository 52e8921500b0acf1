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
}
