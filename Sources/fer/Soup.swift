import ArgumentParser
import FER
import FERData
import FERIO
import FERModels
import FERTraining
import Foundation

struct Soup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Average the weights of models fine-tuned from one start into one model (a model soup).",
        discussion: """
        The models must share one architecture. Without --greedy every model goes in; with --greedy
        the models are visited best first on PublicTest and each stays only if the soup's PublicTest
        accuracy does not fall. --refresh-batch-norm measures the batch-norm statistics afresh on
        Training faces (in our runs it helped soups of models trained without --mixup, and hurt those with). PublicTest is the only split scored: never PrivateTest, never a photo set.
        --weights gives each model a share of the mean instead of an equal one (with two models, a
        point on the line between them). The soup is written as F32 without int8 ranges (run fer calibrate int8 on it for int8).
        Example: fer soup runs/a/best.safetensors runs/b/best.safetensors --data fer2013.csv.gz --greedy --out soup.safetensors
        """)

    @Argument(help: "Model files (.safetensors), or bundled names; at least two.") var models: [String]
    @Option(help: "Where to write the soup (.safetensors).") var out: String
    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root: PublicTest scores, Training for --refresh-batch-norm.") var data: String?
    @Flag(help: "Keep a model only if it does not lower the soup's PublicTest accuracy (needs --data).") var greedy = false
    @Option(parsing: .upToNextOption, help: "One weight per model (>= 0; scaled to sum to 1). Default: equal.") var weights: [Float] = []
    @Flag(help: "Measure batch-norm statistics afresh on Training faces (needs --data).") var refreshBatchNorm = false
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard models.count >= 2 else { throw ValidationError("give at least two models to average") }
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        if (greedy || refreshBatchNorm) && data == nil { throw ValidationError("--greedy and --refresh-batch-norm need --data") }
        if !weights.isEmpty {
            if greedy { throw ValidationError("--weights and --greedy exclude each other: the greedy soup weighs the models it keeps equally") }
            do { _ = try ModelSoup.normalised(weights, count: models.count) } catch { throw ValidationError("--weights: \(error)") }
        }
        try OutputNames.check(out, against: try models.map { m in try optionError("model") { try BundledModels.resolve(m) } }, option: "--out")
    }

    struct Output: Codable {
        var out: String
        var ingredients: [String]
        var steps: [ModelSoup.GreedyStep]?
        var weights: [Float]?
        var publicTestAccuracy: Double?
        var batchNormRefreshed: Bool
    }

    func run() throws {
        threads.apply()
        let paths = try models.map { try BundledModels.resolve($0) }
        let ingredients = try ModelSoup.load(paths)
        let shares = weights.isEmpty ? nil : try ModelSoup.normalised(weights, count: paths.count)
        let splits = try data.map { try DatasetLoader.load($0) }
        let publicTest = splits?[.publicTest]
        if data != nil, (publicTest?.count ?? 0) == 0 {
            throw DataError.mismatch(data ?? "", reason: "no PublicTest faces")
        }
        let say: (String) -> Void = { if !json { print($0) } }

        var soup: Classifier, steps: [ModelSoup.GreedyStep]?, kept = paths
        if greedy, let publicTest {
            let r = try ModelSoup.greedy(ingredients, validation: publicTest, progress: say)
            soup = r.0; steps = r.1
            kept = r.1.filter(\.kept).map(\.path)
        } else {
            soup = try ModelSoup.average(ingredients, weights: shares)
        }
        if refreshBatchNorm {
            guard let train = splits?[.training], train.count >= 2 else {
                throw DataError.mismatch(data ?? "", reason: "--refresh-batch-norm measures batch statistics over batches of Training faces: it needs at least 2, found \(splits?[.training]?.count ?? 0)")
            }
            let augmentation = ingredients[0].card.training?.augmentation ?? Augmentation()
            ModelSoup.refreshBatchNorm(soup, on: train, augmentation: augmentation)
        }
        let accuracy = publicTest.map { Trainer.evaluate(soup, $0).accuracy }

        var card = ModelCard(spec: ingredients[0].card.spec, classNames: ingredients[0].card.classNames, training: ingredients[0].card.training)
        card.sourceSide = ingredients[0].card.sourceSide
        card.soup = kept
        card.soupWeights = shares
        if let accuracy { card.metrics["publictest_accuracy"] = accuracy }
        // The ingredients' fitted temperature is kept when they agree on it; the int8 ranges are not
        // (they describe the ingredients' activations, not the soup's: run calibrate int8 on it).
        let temperatures = Set(ingredients.filter { kept.contains($0.path) }.map { $0.card.temperature ?? 1 })
        if temperatures.count == 1, let t = temperatures.first, t != 1 { card.temperature = t }
        if temperatures.count > 1 { FileHandle.standardError.write(Data("note: the ingredients have different temperatures (\(temperatures.sorted())); the soup has none: fit one with fer calibrate temperature\n".utf8)) }
        try Checkpoint.save(soup, card: card, to: out)

        if json {
            try printJSON(Output(out: out, ingredients: kept, steps: steps, weights: shares, publicTestAccuracy: accuracy, batchNormRefreshed: refreshBatchNorm))
            return
        }
        say("soup of \(kept.count) of \(paths.count) models\(refreshBatchNorm ? ", batch norm measured afresh" : "")")
        if let accuracy { say(String(format: "PublicTest accuracy %.2f%%", 100 * accuracy)) }
        say("written to \(out)")
    }
}
