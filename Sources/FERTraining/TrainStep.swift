import FEREngine
import FEROptimizers
import FERIO
import FERData
import FERModels
import FEREvaluation

/// One optimisation step: forward, loss, backward, update. Returns the batch loss and how many
/// predictions were right.
public func trainStep(_ network: Sequential, _ batch: Batch, loss: SoftmaxCrossEntropy, optimizer: Optimizer,
                      clipNorm: Float? = nil) -> (loss: Float, correct: Int) {
    let logits = network.forward(batch.tensor(), mode: .training)
    let target: SoftmaxCrossEntropy.Target = batch.targets.map { .distributions($0) } ?? .labels(batch.labels)
    let result = loss(logits, target)
    _ = network.backward(result.gradient)
    if let c = clipNorm { clipGradients(network.parameters, maxNorm: c) }
    optimizer.step()
    return (result.loss, countCorrect(result.probabilities, batch.labels))
}

/// Number of rows of row-major [n, k] scores whose arg-max equals the label.
public func countCorrect(_ scores: [Float], _ labels: [Int]) -> Int {
    let k = scores.count / max(labels.count, 1)
    var correct = 0
    for (i, y) in labels.enumerated() {
        var best = 0
        for c in 1..<k where scores[i * k + c] > scores[i * k + best] { best = c }
        if best == y { correct += 1 }
    }
    return correct
}
