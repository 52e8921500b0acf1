import ArgumentParser
import FER
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks (see benchmarks/).")
    func run() throws { print("see benchmarks/README.md") }
}
