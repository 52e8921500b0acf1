import ArgumentParser
import FER
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job on the bundled defaults: classify the bundled sample face with the bundled model.")

    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var p = Predict()
        p.images = [Bundled.sampleFace]
        p.model = nil
        p.tta = .none
        p.json = json
        if !json { print("bundled model: \(Bundled.model)\nsample: \(Bundled.sampleFace) (NASA astronaut portrait, public domain)\n") }
        try p.run()
    }
}
