import FERData
import FEREngine
import FERModels
import Foundation

/// Weight averaging ("model soups", Wortsman et al. 2022): networks fine-tuned from one starting
/// point usually sit in one basin of the loss, so the element-wise mean of their weights is itself
/// a good network, often better than any of them, at the cost of one network at inference (an
/// ensemble costs one per member).
///
/// The greedy soup visits the ingredients best first and keeps each one only if the soup's
/// validation accuracy does not drop; validation is PublicTest, the selection split.
public enum ModelSoup {
    public struct Ingredient {
        public let path: String
        public let model: Classifier
        public let card: ModelCard
    }

    public enum SoupError: Error, CustomStringConvertible {
        case tooFew
        case mismatch(String, String, String)
        case badWeights(String)

        public var description: String {
            switch self {
            case .tooFew: return "a soup needs at least two models"
            case .mismatch(let a, let b, let what): return "\(b) cannot be averaged with \(a): \(what) differ"
            case .badWeights(let why): return "soup weights: \(why)"
            }
        }
    }

    public static func load(_ paths: [String]) throws -> [Ingredient] {
        guard paths.count >= 2 else { throw SoupError.tooFew }
        let ingredients = try paths.map { p in
            let (model, card, _) = try Checkpoint.load(p)
            return Ingredient(path: p, model: model, card: card)
        }
        let first = ingredients[0]
        for i in ingredients.dropFirst() {
            if i.card.spec != first.card.spec { throw SoupError.mismatch(first.path, i.path, "their architectures") }
            if i.card.classNames != first.card.classNames { throw SoupError.mismatch(first.path, i.path, "their classes") }
            if i.card.sourceSide != first.card.sourceSide { throw SoupError.mismatch(first.path, i.path, "their input sides") }
        }
        return ingredients
    }

    /// A new network whose every weight and batch-norm statistic is the mean of the ingredients',
    /// or, given `weights` (one per ingredient, >= 0, not all 0), their weighted mean: with two
    /// models, a point on the straight line between them (as WiSE-FT interpolates).
    public static func average(_ ingredients: [Ingredient], weights: [Float]? = nil) throws -> Classifier {
        guard let first = ingredients.first else { throw SoupError.tooFew }
        let w = try normalised(weights ?? Array(repeating: 1, count: ingredients.count), count: ingredients.count)
        let soup = Classifier(spec: first.card.spec, classNames: first.card.classNames, sourceSide: first.card.sourceSide)
        let targets = soup.network.parameters + soup.network.buffers
        let sources = ingredients.map { $0.model.network.parameters + $0.model.network.buffers }
        for (j, p) in targets.enumerated() {
            let dst = p.values
            for i in 0..<dst.count { dst[i] = 0 }
            for (s, wk) in zip(sources, w) {
                let src = s[j].values
                for i in 0..<dst.count { dst[i] += wk * src[i] }
            }
            p.changed()
        }
        return soup
    }

    /// `weights` scaled to sum to 1, after checking there is one per model, each finite and >= 0.
    public static func normalised(_ weights: [Float], count: Int) throws -> [Float] {
        guard weights.count == count else { throw SoupError.badWeights("\(weights.count) weights for \(count) models") }
        if let bad = weights.first(where: { !($0.isFinite && $0 >= 0) }) { throw SoupError.badWeights("each must be a finite number >= 0, got \(bad)") }
        let total = weights.reduce(0, +)
        guard total > 0 else { throw SoupError.badWeights("at least one must be above 0") }
        return weights.map { $0 / total }
    }

    /// Batch-norm running statistics measured afresh for the averaged weights (as SWA does): training-
    /// mode forward passes over `batches` seeded batches of Training faces, augmented as in training.
    /// The mean of the ingredients' statistics is not the statistics of the mean network.
    public static func refreshBatchNorm(_ model: Classifier, on data: FaceDataset, augmentation: Augmentation,
                                        batches: Int = 100, batchSize: Int = 128, seed: UInt64 = 1) {
        guard data.count > 1 else { return }
        var done = 0, epoch = 0
        while done < batches {
            for batch in TrainingBatches(data, batchSize: min(batchSize, data.count), size: model.spec.inputSize,
                                         augmentation: augmentation, seed: seed, epoch: epoch) {
                if done >= batches { break }
                _ = model.network.forward(batch.tensor(), mode: .training)
                done += 1
            }
            epoch += 1
        }
    }

    public struct GreedyStep: Codable, Sendable {
        public let path: String
        /// The ingredient's own validation accuracy.
        public let alone: Double
        /// The soup's accuracy with this ingredient added, and whether it was kept.
        public let soup: Double
        public let kept: Bool
    }

    /// Greedy soup: ingredients best first; each joins if the soup's accuracy on `validation` does
    /// not fall. Returns the soup and every step.
    public static func greedy(_ ingredients: [Ingredient], validation: FaceDataset,
                              progress: ((String) -> Void)? = nil) throws -> (Classifier, [GreedyStep]) {
        guard ingredients.count >= 2 else { throw SoupError.tooFew }
        let alone = ingredients.map { Trainer.evaluate($0.model, validation).accuracy }
        let order = ingredients.indices.sorted { alone[$0] > alone[$1] }
        var chosen = [ingredients[order[0]]]
        var best = alone[order[0]], soup = ingredients[order[0]].model
        var steps = [GreedyStep(path: ingredients[order[0]].path, alone: best, soup: best, kept: true)]
        progress?(String(format: "start with %@: %.2f%%", ingredients[order[0]].path, 100 * best))
        for k in order.dropFirst() {
            let candidate = try average(chosen + [ingredients[k]])
            let a = Trainer.evaluate(candidate, validation).accuracy
            let kept = a >= best
            steps.append(GreedyStep(path: ingredients[k].path, alone: alone[k], soup: a, kept: kept))
            progress?(String(format: "%@ %@ (%.2f%% alone): soup %.2f%%", kept ? "add " : "skip", ingredients[k].path, 100 * alone[k], 100 * a))
            if kept { chosen.append(ingredients[k]); best = a; soup = candidate }
        }
        return (soup, steps)
    }
}
