import ArgumentParser
import FER
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job on the bundled defaults: find and label the face in the bundled photo.")

    @Option(help: "Where to write the annotated photo.") var out: String = "astronaut.annotated.png"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let p = try Predict.parse([Checkout.samplePhoto, "--annotate", out] + (json ? ["--json"] : []))
        if !json {
            print("bundled model: \((try BundledModels.defaultModel))")
            print("photo: \(Checkout.samplePhoto) (Eileen Collins, NASA portrait, public domain)\n")
        }
        try p.run()
    }
}
