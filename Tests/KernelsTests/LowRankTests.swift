import Kernels
import XCTest

final class LowRankTests: XCTestCase {
    func random(_ count: Int, _ generator: inout SystemRandomNumberGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 1e-4) {
        XCTAssertEqual(a.count, b.count, what)
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, what)
    }

    /// Every product of every kernel variant this CPU runs against its naive reference, on shapes with SIMD tails,
    /// row counts off the back-projection's blocks of four, and ranks 1, 3, 4 and 6.
    func testProductsMatchReference() {
        var generator = SystemRandomNumberGenerator()
        for variant in KernelVariant.supported {
            for (rows, columns, rank) in [(7, 13, 1), (33, 40, 3), (64, 101, 4), (9, 70, 6), (2, 48, 4)] {
                let m = random(rows * columns, &generator), qt = random(rank * columns, &generator)
                var p = [Float](repeating: .nan, count: rows * rank)
                lowRankProject(m, rows: rows, columns: columns, qt: qt, rank: rank, into: &p, variant: variant)
                assertClose(p, LowRankReference.project(m, rows: rows, columns: columns, qt: qt, rank: rank),
                            "\(variant) project \(rows)x\(columns) r\(rank)")

                var backQt = [Float](repeating: .nan, count: rank * columns)
                lowRankBackProject(m, rows: rows, columns: columns, pt: p, rank: rank, into: &backQt, variant: variant)
                assertClose(backQt, LowRankReference.backProject(m, rows: rows, columns: columns, pt: p, rank: rank), "back-project")

                var approximation = [Float](repeating: .nan, count: rows * columns), error = m
                lowRankReconstruct(&error, approximation: &approximation, rows: rows, columns: columns, pt: p, qt: qt, rank: rank,
                                   share: 0.5, variant: variant)
                let reference = LowRankReference.reconstruct(m, rows: rows, columns: columns, pt: p, qt: qt, rank: rank, share: 0.5)
                assertClose(approximation, reference.approximation, "reconstruct")
                assertClose(error, reference.error, "error feedback")
                // Rows `only` from the approximation's start, the others' error left alone; share 0 keeps m's bits
                // (here −0, where m − 0·a would make +0 of a negative a).
                let only = rows / 3..<rows - rows / 4, signedZeros = [Float](repeating: -0.0, count: rows * columns)
                for (share, start) in [(Float(0.5), m), (0, signedZeros)] {
                    var rowsOnly = [Float](repeating: .nan, count: only.count * columns), kept = start
                    lowRankReconstruct(&kept, approximation: &rowsOnly, rows: rows, columns: columns, pt: p, qt: qt, rank: rank,
                                       share: share, only: only, variant: variant)
                    let expected = LowRankReference.reconstruct(start, rows: rows, columns: columns, pt: p, qt: qt, rank: rank,
                                                                share: share)
                    let inside = (only.lowerBound * columns)..<(only.upperBound * columns)
                    assertClose(rowsOnly, Array(expected.approximation[inside]), "reconstruct rows \(only)")
                    XCTAssertEqual(kept.enumerated().filter { !inside.contains($0.offset) || share == 0 }.map(\.element.bitPattern),
                                   start.enumerated().filter { !inside.contains($0.offset) || share == 0 }.map(\.element.bitPattern),
                                   "share \(share): the error outside rows \(only), or all of it, unchanged")
                    assertClose(Array(kept[inside]), Array(expected.error[inside]), "error feedback of rows \(only)")
                }
                let norm = lowRankSquaredNorm(pt: p, rows: rows, qt: qt, columns: columns, rank: rank)
                let expected = LowRankReference.squaredNorm(rows: rows, columns: columns, pt: p, qt: qt, rank: rank)
                XCTAssertEqual(norm, expected, accuracy: 1e-5 * expected, "squared norm from the factors")
            }
        }
    }
}
