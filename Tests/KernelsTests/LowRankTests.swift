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
                let m = random(rows * columns, &generator), e = random(rows * columns, &generator), qt = random(rank * columns, &generator)
                var fastM = m, p = [Float](repeating: .nan, count: rows * rank)
                lowRankProject(&fastM, adding: e, rows: rows, columns: columns, qt: qt, rank: rank, into: &p, variant: variant)
                let expected = LowRankReference.project(m, adding: e, rows: rows, columns: columns, qt: qt, rank: rank)
                XCTAssertEqual(fastM, expected.m, "m + e")
                assertClose(p, expected.pt, "\(variant) project \(rows)x\(columns) r\(rank)")

                var backQt = [Float](repeating: .nan, count: rank * columns)
                lowRankBackProject(fastM, rows: rows, columns: columns, pt: p, rank: rank, into: &backQt, variant: variant)
                assertClose(backQt, LowRankReference.backProject(fastM, rows: rows, columns: columns, pt: p, rank: rank), "back-project")

                var error = [Float](repeating: .nan, count: rows * columns), rebuilt = fastM
                lowRankReconstruct(&rebuilt, error: &error, rows: rows, columns: columns, pt: p, qt: qt, rank: rank, share: 0.5, variant: variant)
                let reference = LowRankReference.reconstruct(fastM, rows: rows, columns: columns, pt: p, qt: qt, rank: rank, share: 0.5)
                assertClose(rebuilt, reference.m, "reconstruct")
                assertClose(error, reference.e, "error feedback")
            }
        }
    }
}
