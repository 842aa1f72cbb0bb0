import Datasets
import Distributed
import Foundation
import Kernels
import NeuralNet
import Observe
import Support

/// Runs `rows` of `data` through `network` in batches of at most `batchSize` rows and hands each batch's outputs
/// [count×outputWidth] and targets [count×targetCount] to `body` (valid during the call only): the one inference loop of
/// evaluation, the per-epoch test metrics and `predict`.
func forEachInferenceBatch(_ rows: Range<Int>, of data: Dataset, network: Network, batchSize: Int,
                           _ body: (_ outputs: UnsafePointer<Float>, _ targets: UnsafePointer<Float>, _ count: Int) throws -> Void)
    rethrows {
    guard !rows.isEmpty else { return }
    network.reserve(batchCapacity: batchSize)
    let input = UnsafeMutablePointer<Float>.allocate(capacity: batchSize * data.featureCount)
    let targets = UnsafeMutablePointer<Float>.allocate(capacity: batchSize * data.targetCount)
    var indices = [Int32](repeating: 0, count: batchSize)
    defer { input.deallocate(); targets.deallocate() }
    var start = rows.lowerBound
    while start < rows.upperBound {
        let count = min(batchSize, rows.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        indices.withUnsafeBufferPointer {
            data.gather(rows: UnsafeBufferPointer(rebasing: $0[0..<count]), features: input, targets: targets)
        }
        try body(network.forward(input: input, batch: count), targets, count)
        start += count
    }
}

/// The task's evaluation sums (loss, correct predictions, per-target errors, each row's class probabilities; see
/// `LearningTask.sumCount`) over `rows` of `data`.
func evaluateRows(_ rows: Range<Int>, of data: Dataset, network: Network, loss: LossOptions, task: LearningTask,
                  batchSize: Int) -> [Double] {
    var sums = [Double](repeating: 0, count: task.sumCount(rows: data.count))
    let mean = data.targetMean, deviation = data.targetStandardDeviation
    var next = rows.lowerBound
    forEachInferenceBatch(rows, of: data, network: network, batchSize: batchSize) { outputs, targets, count in
        let batch = loss.evaluate(outputs: outputs, targets: targets, batch: count, width: network.outputWidth,
                                  gradient: nil, gradientScale: 0)
        task.accumulate(batch, outputs: outputs, targets: targets, count: count, firstRow: next, into: &sums, targetMean: mean,
                        targetStandardDeviation: deviation)
        next += count
    }
    return sums
}

/// The task's metrics (`loss`, `accuracy`, ...) of `network` on all of `data`, sharded across the ranks and reduced.
func evaluate(_ network: Network, on data: Dataset, task: LearningTask, loss: LossOptions, batchSize: Int,
              communicator: Communicator) throws -> MetricValues {
    let mine = chunkRange(communicator.rank, of: communicator.size, total: data.count)
    let local = evaluateRows(mine, of: data, network: network, loss: loss, task: task, batchSize: batchSize)
    return task.metrics(of: try communicator.allreduceSum(local), count: data.count)
}
