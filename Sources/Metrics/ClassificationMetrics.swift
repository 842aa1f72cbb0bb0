/// Metrics: classification metrics over all evaluated rows as scikit-learn defines them: AUC, macro F1, balanced accuracy, log loss.

import Foundation

// Classification metrics over every evaluated row at once, as scikit-learn defines them: roc_auc_score (binary, and
// multi_class="ovr" with average="macro"), f1_score(average="macro"), balanced_accuracy_score and log_loss. They
// take the class probabilities of all rows, so ranks first gather theirs; the result is then the same on any
// number of ranks.

/// Class probabilities and true classes of evaluated rows, and each row's weight (nil: every row weighs 1).
public struct ClassPredictions {
    /// [rows × classes], each row summing to 1.
    public var probabilities: [Double]
    public var labels: [Int]
    public var classCount: Int
    public var weights: [Double]?

    /// Predictions of `labels.count` rows over `classCount` classes.
    public init(probabilities: [Double], labels: [Int], classCount: Int, weights: [Double]? = nil) {
        precondition(probabilities.count == labels.count * classCount, "ClassPredictions: one probability per row and class")
        (self.probabilities, self.labels, self.classCount, self.weights) = (probabilities, labels, classCount, weights)
    }

    private func weight(_ row: Int) -> Double { weights?[row] ?? 1 }

    /// The predicted class of each row: the most probable (the first of equals, as numpy's argmax).
    public var predicted: [Int] {
        labels.indices.map { row in
            var best = 0
            for j in 1..<classCount where probabilities[row * classCount + j] > probabilities[row * classCount + best] { best = j }
            return best
        }
    }

    /// The area under the ROC curve: for two classes of the probability of class 1, else the mean over classes of
    /// each class's one-vs-rest area (classes with no row, or with every row, are left out; NaN when none is left).
    public var auc: Double {
        if classCount == 2 { return Self.binaryAUC(scores: labels.indices.map { probabilities[$0 * 2 + 1] },
                                                   positive: labels.map { $0 == 1 }, weights: weights) }
        let areas = (0..<classCount).map { c in
            Self.binaryAUC(scores: labels.indices.map { probabilities[$0 * classCount + c] }, positive: labels.map { $0 == c },
                           weights: weights)
        }.filter { !$0.isNaN }
        return areas.isEmpty ? .nan : areas.reduce(0, +) / Double(areas.count)
    }

    /// The weighted fraction of pairs (positive, negative) the scores order right, ties counting half (the
    /// trapezoidal ROC area); NaN without both kinds of row.
    public static func binaryAUC(scores: [Double], positive: [Bool], weights: [Double]? = nil) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var negativesBelow = 0.0, area = 0.0, positives = 0.0, negatives = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end < order.count && scores[order[end]] == scores[order[start]] { end += 1 }
            var tiedPositives = 0.0, tiedNegatives = 0.0
            for index in order[start..<end] {
                let weight = weights?[index] ?? 1
                if positive[index] { tiedPositives += weight } else { tiedNegatives += weight }
            }
            area += tiedPositives * (negativesBelow + tiedNegatives / 2)
            negativesBelow += tiedNegatives
            positives += tiedPositives
            negatives += tiedNegatives
            start = end
        }
        return positives > 0 && negatives > 0 ? area / (positives * negatives) : .nan
    }

    /// [true class × predicted class] weighted counts.
    private var confusion: [[Double]] {
        var matrix = [[Double]](repeating: [Double](repeating: 0, count: classCount), count: classCount)
        for (row, guess) in predicted.enumerated() { matrix[labels[row]][guess] += weight(row) }
        return matrix
    }

    /// The mean over classes of F1 = 2·precision·recall / (precision + recall) (0 for a class never right); classes
    /// neither present nor predicted are left out, as scikit-learn's labels are those it sees.
    public var macroF1: Double {
        let matrix = confusion
        var scores: [Double] = []
        for c in 0..<classCount {
            let truePositive = matrix[c][c]
            let actual = matrix[c].reduce(0, +), predictedCount = matrix.map { $0[c] }.reduce(0, +)
            guard actual > 0 || predictedCount > 0 else { continue }
            scores.append(actual + predictedCount > 0 ? 2 * truePositive / (actual + predictedCount) : 0)
        }
        return scores.isEmpty ? 0 : scores.reduce(0, +) / Double(scores.count)
    }

    /// The mean over classes present of each class's recall.
    public var balancedAccuracy: Double {
        let matrix = confusion
        let recalls = (0..<classCount).compactMap { c -> Double? in
            let actual = matrix[c].reduce(0, +)
            return actual > 0 ? matrix[c][c] / actual : nil
        }
        return recalls.isEmpty ? 0 : recalls.reduce(0, +) / Double(recalls.count)
    }

    /// The weighted mean of −log p(true class), each probability clipped to [ε, 1 − ε] (ε: Double's machine epsilon)
    /// and each row renormalized, as scikit-learn computes it.
    public var logLoss: Double {
        var total = 0.0, weightSum = 0.0
        let epsilon = Double.ulpOfOne
        for row in labels.indices {
            var clipped = (0..<classCount).map { min(max(probabilities[row * classCount + $0], epsilon), 1 - epsilon) }
            let sum = clipped.reduce(0, +)
            clipped = clipped.map { $0 / sum }
            total -= weight(row) * log(clipped[labels[row]])
            weightSum += weight(row)
        }
        return weightSum > 0 ? total / weightSum : 0
    }
}
