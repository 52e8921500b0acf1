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

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model presets with their size and cost.")

    @Option(help: "Input side the cost is computed for.") var inputSize: Int = 48
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable { var preset: String; var width: Int; var parameters: Int; var multiplyAdds: Int; var description: String }

    func run() throws {
        let rows = Preset.allCases.map { p -> Row in
            let spec = ModelSpec(preset: p, inputSize: inputSize)
            let net = spec.build(seed: 1)
            return Row(preset: p.rawValue, width: spec.width, parameters: net.parameters.reduce(0) { $0 + $1.count },
                       multiplyAdds: net.multiplyAdds(spec.inputShape), description: p.blurb)
        }
        if json { printJSON(rows); return }
        print("preset  width  parameters  multiply-adds/image (\(inputSize)x\(inputSize))  description")
        for r in rows {
            print(r.preset.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: "%5d  %10@  %12@            ", r.width, group(r.parameters), group(r.multiplyAdds)) + r.description)
        }
    }
}

func group(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(c) }
    return String(out.reversed())
}
