import Foundation

/// Learning rate as a function of the optimizer step, with optional linear warmup.
public struct LearningRateSchedule: Equatable, Sendable {
    /// The shape after warmup.
    public enum Kind: String, CaseIterable, Sendable {
        case constant, step, cosine
    }

    public var kind: Kind
    /// Peak learning rate (`optimizer.lr`).
    public var baseRate: Float
    /// Steps of linear warmup from baseRate/warmupSteps up to baseRate.
    public var warmupSteps: Int
    /// `step`: multiply by `gamma` every `stepSize` steps after warmup.
    public var stepSize: Int
    public var gamma: Float
    /// `cosine`: the rate reached at the last step.
    public var minimumRate: Float
    /// Total optimizer steps of the run (cosine's period ends here).
    public var totalSteps: Int

    /// Makes a schedule; unused parameters are ignored by the other kinds.
    public init(kind: Kind, baseRate: Float, warmupSteps: Int = 0, stepSize: Int = 1, gamma: Float = 0.1,
                minimumRate: Float = 0, totalSteps: Int = 1) {
        (self.kind, self.baseRate, self.warmupSteps, self.totalSteps) = (kind, baseRate, warmupSteps, totalSteps)
        (self.stepSize, self.gamma, self.minimumRate) = (stepSize, gamma, minimumRate)
    }

    /// The rate used by optimizer step `step` (0-based).
    public func rate(atStep step: Int) -> Float {
        if step < warmupSteps {
            return baseRate * Float(step + 1) / Float(warmupSteps)
        }
        let sinceWarmup = step - warmupSteps
        switch kind {
        case .constant:
            return baseRate
        case .step:
            return baseRate * Float(Foundation.pow(Double(gamma), Double(sinceWarmup / max(1, stepSize))))
        case .cosine:
            let period = max(1, totalSteps - warmupSteps)
            let progress = min(1, Double(sinceWarmup) / Double(period))
            return minimumRate + (baseRate - minimumRate) * Float(0.5 * (1 + Foundation.cos(Double.pi * progress)))
        }
    }
}
