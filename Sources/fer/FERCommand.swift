import ArgumentParser
import FER
import FERData
import FERTraining
import Foundation

@main
struct FERCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer",
        abstract: "Facial expression recognition: train, evaluate and run FER2013 models.",
        // The user's path first; the research tools below it.
        subcommands: [Demo.self, Predict.self, Video.self, Live.self, Serve.self, Evaluate.self, Train.self, Models.self, Export.self],
        groupedSubcommands: [CommandGroup(name: "Tools", subcommands: [Calibrate.self, Soup.self, Folds.self, Bench.self, BenchOne.self])],
        defaultSubcommand: Demo.self
    )

    /// Every failure ends the same way: one line "error: WHAT" on standard error and exit code 1
    /// (help and chosen exit codes, such as 130 after Ctrl-C, pass through).
    static func main() {
        do {
            let (args, notes) = Deprecations.rewrite(Array(CommandLine.arguments.dropFirst()))
            for n in notes { FileHandle.standardError.write(Data("\(n)\n".utf8)) }
            var command = try parseAsRoot(joiningNegativeValues(args))
            try command.run()
        } catch {
            if error is ExitCode || exitCode(for: error) == .success { exit(withError: error) }
            let message = Self.message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(1)
        }
    }

    /// `--epochs -1` becomes `--epochs=-1`, so that a negative number reaches validation (and its
    /// message) instead of being taken for an unknown flag.
    static func joiningNegativeValues(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, Double(args[i + 1]) != nil || args[i + 1].lowercased() == "-inf",
               args[i + 1].hasPrefix("-") {
                out.append(a + "=" + args[i + 1])
                i += 2
            } else {
                out.append(a)
                i += 1
            }
        }
        return out
    }
}

/// Files of the checkout this `fer` was built in: the sample photo and the benchmark scripts.
/// (The bundled models are found by the library: `BundledModels`.)
enum Checkout {
    static var packageRoot: String {
        // .build/<triple>/<config>/fer -> package root
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<6 {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    static var samplePhoto: String { (packageRoot as NSString).appendingPathComponent("samples/astronaut.png") }
}

/// Ctrl-C asks the trainer (or `live`) to save and stop; a second Ctrl-C exits at once.
func installInterruptHandler(_ message: String = "Ctrl-C: saving and stopping after this step (again to quit now)", signals: [Int32] = [SIGINT]) {
    interruptSources = signals.map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            if StopFlag.shared.isSet { Foundation.exit(130) }
            FileHandle.standardError.write(Data("\n\(message)\n".utf8))
            StopFlag.shared.set()
        }
        source.resume()
        return source
    }
}
nonisolated(unsafe) var interruptSources: [DispatchSourceSignal] = []  // set once on the main thread, kept only to stay alive

/// Prints `value` as indented JSON; a value JSON cannot hold (NaN, infinity) is an error, never an
/// empty output.
func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .prettyPrinted]
    let data: Data
    do { data = try e.encode(value) } catch { throw ValidationError("cannot write the result as JSON: it holds a value JSON cannot represent (NaN or infinity)") }
    print(String(decoding: data, as: UTF8.self))
}
