import ArgumentParser
import FER
import FERModels
import Foundation

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model presets (to train) and the bundled models (to run).")

    @Option(help: "Input side the presets' cost is computed for (16-48).") var inputSize: Int = 48
    @Flag(help: "Print JSON.") var json = false

    struct PresetRow: Codable { var preset: String; var width: Int; var parameters: Int; var multiplyAdds: Int; var description: String }
    struct BundledRow: Codable {
        var name: String; var path: String; var preset: String; var width: Int; var inputSize: Int
        var parameters: Int; var multiplyAdds: Int; var metrics: [String: Double]
    }
    struct Output: Codable { var presets: [PresetRow]; var bundled: [BundledRow] }

    func validate() throws {
        if let p = ModelSpec(preset: .cnn, inputSize: inputSize).problem { throw ValidationError(p) }
    }

    func run() throws {
        let presets = Preset.allCases.map { p -> PresetRow in
            let spec = ModelSpec(preset: p, inputSize: inputSize)
            let net = spec.build(seed: 1)
            return PresetRow(preset: p.rawValue, width: spec.width, parameters: net.parameters.reduce(0) { $0 + $1.count },
                             multiplyAdds: net.multiplyAdds(spec.inputShape), description: p.blurb)
        }
        let bundled = try BundledModels.names.map { name -> BundledRow in
            let m = try ExpressionRecognizer.loadModel(name, precision: .fp32)
            return BundledRow(name: name, path: m.path, preset: m.card.spec.preset.rawValue, width: m.card.spec.width, inputSize: m.card.spec.inputSize,
                              parameters: m.classifier.parameterCount, multiplyAdds: m.classifier.multiplyAdds, metrics: m.card.metrics)
        }
        if json { try printJSON(Output(presets: presets, bundled: bundled)); return }
        print("presets (fer train --preset NAME)")
        print("preset  width  parameters  multiply-adds/image (\(inputSize)x\(inputSize))  description")
        for r in presets {
            print(r.preset.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: "%5d  %10@  %12@            ", r.width, group(r.parameters), group(r.multiplyAdds)) + r.description)
        }
        print("\nbundled models (--model NAME)")
        print("name      preset  width  input  parameters  multiply-adds/face  path")
        for b in bundled {
            print(b.name.padding(toLength: 10, withPad: " ", startingAt: 0) + b.preset.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: "%5d  %5d  %10@  %18@  ", b.width, b.inputSize, group(b.parameters), group(b.multiplyAdds)) + b.path)
        }
    }
}

func group(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(c) }
    return String(out.reversed())
}
