import Support

/// The one naming rule between `metrics.jsonl` keys, TensorBoard tags and `plexus plot`: the key `test_loss` is the
/// tag `test/loss`, the split `test` of the measure `loss`.
enum MetricName {
    /// The data splits that prefix metric names.
    static let splits = ["train", "test", "val"]

    /// The keys of a `metrics.jsonl` line that say where and how fast the run was, not what it learned (EpochRecord's
    /// own fields besides `train_loss`): TensorBoard's per-epoch scalars and the default plot leave them out.
    static let runKeys: Set<String> = ["epoch", "step", "lr", "samples_per_second", "elapsed_seconds", "slowest_rank",
                                       "slowest_rank_ratio", "wait_fraction"]

    /// The split and measure a `metrics.jsonl` key names: `val_accuracy` → (`val`, `accuracy`); a key without a split
    /// prefix describes training (`lr` → (`train`, `lr`)).
    static func parts(_ key: String) -> (split: String, measure: String) {
        for split in splits where key.hasPrefix(split + "_") && key.count > split.count + 1 {
            return (split, String(key.dropFirst(split.count + 1)))
        }
        return ("train", key)
    }

    /// The TensorBoard tag of a `metrics.jsonl` key: `test_loss` → `test/loss`, `lr` → `train/lr`.
    static func tag(_ key: String) -> String {
        let (split, measure) = parts(key)
        return split + "/" + measure
    }
}
