import ArgumentParser
import FER
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a split.")

    @Option(help: "Model file (.safetensors), or a bundled model: default, fast.") var model: String?
    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String
    @Option(help: "Training, PublicTest or PrivateTest.") var split: Split = .privateTest
    @Option(help: "Test-time augmentation: none, flip, tencrop.") var tta: TestTimeAugmentation = .none
    @Option(help: "fer2013new.csv: score against FER+ majority labels.") var ferplus: String?
    @Option(help: "Write the confusion matrix image here (.png).") var confusion: String?
    @Option var threads: Int = 2
    @Flag(help: "Print JSON.") var json = false

    struct Output: Codable {
        var model: String; var data: String; var split: String; var tta: String
        var report: ClassificationReport; var seconds: Double
    }

    func run() throws {
        DNNL.setThreads(threads)
        let path = try Bundled.resolve(model)
        do {
            let (classifier, _, _) = try Checkpoint.load(path)
            var splits = try DatasetLoader.load(data)
            if let fp = ferplus {
                let plus = try FERPlus.load(fp)
                for (k, v) in splits { splits[k] = try plus.relabel(v, mode: .majority) }
            }
            guard let set = splits[split] else { throw DataError.mismatch(data, reason: "no \(split.rawValue) split") }
            let bar = ProgressBar(total: set.count, label: "evaluate \(split.rawValue)")
            bar.enabled = !json
            let start = Date()
            let probs = classifier.classify(set, tta: tta, batchSize: 256) { bar.update($0) }
            bar.finish()
            let seconds = Date().timeIntervalSince(start)
            let report = ClassificationReport(labels: set.labels, predictions: probs.map(argmax), classNames: classifier.classNames)
            if let c = confusion {
                try Plots.confusionMatrix(report, title: "\((path as NSString).lastPathComponent) on \(split.rawValue) (TTA \(tta.rawValue))").write(c)
            }
            if json {
                printJSON(Output(model: path, data: data, split: split.rawValue, tta: tta.rawValue, report: report, seconds: seconds))
            } else {
                print("model \(path)\nsplit \(split.rawValue) of \(data), \(set.count) faces, TTA \(tta.rawValue), \(String(format: "%.1f", seconds)) s\n")
                print(report.table)
                if let c = confusion { print("\nconfusion matrix image: \(c)") }
            }
        } catch {
            fail(error)
        }
    }
}
