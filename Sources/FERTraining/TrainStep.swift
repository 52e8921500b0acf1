import FEREngine
import FEROptimizers
import FERData

/// One optimisation step: forward, loss, backward, update. Returns the batch loss and how many
/// predictions were right.
public func trainStep(_ network: Sequential, _ batch: Batch, loss: SoftmaxCrossEntropy, optimizer: Optimizer,
                      clipNorm: Float? = nil) -> (loss: Float, correct: Int) {
    let r = forwardBackward(network, batch, loss: loss)
    if let c = clipNorm { clipGradients(network.parameters, maxNorm: c) }
    optimizer.step()
    return r
}

/// Forward, loss and backward: gradients in every `Parameter.grad`, the batch's mean loss and
/// correct predictions.
func forwardBackward(_ network: Sequential, _ batch: Batch, loss: SoftmaxCrossEntropy) -> (loss: Float, correct: Int) {
    let logits = network.forward(batch.tensor(), mode: .training)
    let target: SoftmaxCrossEntropy.Target = batch.targets.map { .distributions($0) } ?? .labels(batch.labels)
    let result = loss(logits, target)
    _ = network.backward(result.gradient)
    return (result.loss, countCorrect(result.probabilities, batch.labels))
}

/// What one step saw over the whole global batch.
public struct StepResult: Sendable {
    public var loss: Float
    public var correct: Int
    public var seen: Int
    /// Whether any rank asked to stop (Ctrl-C) before this step's update.
    public var stop: Bool
}

/// One data-parallel step: each rank runs forward and backward on its shard of the global batch;
/// `allReduce` sums one buffer over the ranks (gradients weighted by shard size, the batch's loss,
/// correct count and size, and the stop flag), so every rank applies the same update: the
/// gradient of the mean loss over the global batch, as one process would compute it.
public func trainStep(_ network: Sequential, _ batch: Batch, loss: SoftmaxCrossEntropy, optimizer: Optimizer,
                      clipNorm: Float? = nil, stop: Bool, allReduce: (inout [Float]) throws -> Void) throws -> StepResult {
    let local = forwardBackward(network, batch, loss: loss)
    let params = network.parameters, n = Float(batch.count)
    var buffer = [Float]()
    buffer.reserveCapacity(params.reduce(4) { $0 + $1.grads.count })
    for p in params { buffer.append(contentsOf: p.grads.lazy.map { $0 * n }) }
    buffer += [local.loss * n, Float(local.correct), n, stop ? 1 : 0]
    try allReduce(&buffer)
    let at = buffer.count - 4, total = buffer[at + 2], scale = 1 / total
    var offset = 0
    for p in params {
        let g = p.grads
        for i in 0..<g.count { g[i] = buffer[offset + i] * scale }
        offset += g.count
    }
    if let c = clipNorm { clipGradients(params, maxNorm: c) }
    optimizer.step()
    return StepResult(loss: buffer[at] / total, correct: Int(buffer[at + 1].rounded()), seen: Int(total.rounded()), stop: buffer[at + 3] > 0)
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
