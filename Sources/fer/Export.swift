import ArgumentParser
import FERData
import FEREngine
import FEREvaluation
import FERIO
import FERModels
import FEROptimizers
import FERTraining
import FERVision
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a model (e.g. a run's best.safetensors) to a file for shipping, optionally in half precision.")

    @Argument(help: "Model file.") var model: String
    @Argument(help: "Output file (.safetensors).") var out: String
    @Flag(help: "Store weights as F16 (half the size).") var half = false

    func validate() throws {
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        if AtomicFile.sameFile(model, out) { throw ValidationError("\(out) is the input model; refusing to overwrite it") }
    }

    func run() throws {
        let (classifier, card, _) = try Checkpoint.load(model)
        try Checkpoint.save(classifier, card: card, to: out, half: half)
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print("\(out): \(classifier.parameterCount) parameters, \(String(format: "%.1f", Double(size) / 1e6)) MB\(half ? " (F16)" : "")")
    }
}
