import ArgumentParser
import FER
#if ONNX
import FERExport
#endif
import FERIO
import FERModels
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model (e.g. a run's best.safetensors) for shipping: safetensors (optionally F16) or ONNX.",
        discussion: """
        The format follows OUT's extension. .onnx: opset 13, input "face" [N, 1, 48, 48] (the gray face
        resized to 48x48, divided by 255), outputs "logits" and "probabilities"; class names,
        preprocessing and the model card are in the model's metadata_props.
        Example: fer export models/default/model.safetensors fer.onnx
        """)

    @Argument(help: "Model file, or a bundled model name (default, fast, fer2013).") var model: String
    @Argument(help: "Output file: .safetensors or .onnx.") var out: String
    @Flag(help: "Store weights as F16 (half the size; .safetensors only).") var half = false

    var isONNX: Bool { out.lowercased().hasSuffix(".onnx") }

    func validate() throws {
        guard isONNX || out.lowercased().hasSuffix(".safetensors") else {
            throw ValidationError("\(out): the output must end in .safetensors or .onnx")
        }
        if half && isONNX { throw ValidationError("--half applies to .safetensors output, not .onnx") }
        try OutputNames.check(out, against: [try optionError("model") { try BundledModels.resolve(model) }], option: "--out")
    }

    func run() throws {
        let loaded = try optionError("model") { try ExpressionRecognizer.loadModel(model, precision: .fp32) }
        let (classifier, card, st) = (loaded.classifier, loaded.card, loaded.file)
        let format: String
        if isONNX {
            #if ONNX
            try AtomicFile.write(try ONNXExport.model(classifier, card: card), to: out)
            format = " (ONNX, opset \(ONNXExport.opset))"
            #else
            throw ValidationError("this fer was built without ONNX export (scripts/demo builds it lean); build the full one with: swift build -c release")
            #endif
        } else {
            try Checkpoint.save(classifier, card: card, to: out, like: st, half: half ? true : nil)  // its int8 ranges and storage kept
            format = half || st.storedAs == .f16 ? " (F16)" : ""
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print("\(out): \(classifier.parameterCount) parameters, \(String(format: "%.1f", Double(size) / 1e6)) MB\(format)")
    }
}
