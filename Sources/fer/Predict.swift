import ArgumentParser
import FER
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify face crops (any size, gray or colour; resized to 48x48).")

    @Argument(help: "Face images.") var images: [String]
    @Option(help: "Model file (.safetensors); default: the bundled model.") var model: String?
    @Option(help: "Test-time augmentation: none, flip, tencrop.") var tta: TestTimeAugmentation = .none
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable { var file: String; var emotion: String?; var confidence: Float?; var probabilities: [String: Float]?; var error: String? }

    func run() throws {
        DNNL.setThreads(2)
        let classifier: Classifier
        do { classifier = try Checkpoint.load(model ?? Bundled.model).0 } catch { fail(error) }
        var rows: [Row] = []
        for path in images {
            do {
                let face = try Image.read(path).faceInput(side: classifier.sourceSide)
                let p = classifier.classify(faces: [face], tta: tta)[0]
                let top = argmax(p)
                rows.append(Row(file: path, emotion: classifier.classNames[top], confidence: p[top],
                                probabilities: Dictionary(uniqueKeysWithValues: zip(classifier.classNames, p))))
            } catch {
                rows.append(Row(file: path, error: "\(error)"))
            }
        }
        if json {
            printJSON(rows)
        } else {
            for r in rows {
                if let e = r.error { print("\(r.file): error: \(e)"); continue }
                print("\(r.file): \(r.emotion!) (\(String(format: "%.1f", 100 * r.confidence!))%)")
                for name in classifier.classNames {
                    let v = r.probabilities![name]!
                    print("  " + name.padding(toLength: 9, withPad: " ", startingAt: 0) + String(format: "%6.1f%% ", 100 * v)
                          + String(repeating: "█", count: Int((v * 30).rounded())))
                }
            }
        }
        if rows.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}
