import Foundation
import Support

/// SIGUSR1, SIGTERM and SIGINT (what Slurm and mpirun send before a preemption or time limit, and Ctrl-C)
/// only set a flag; the training loop agrees on it across ranks at the next step boundary.
enum StopSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    nonisolated(unsafe) static var installed = false

    static var requested: Bool { flag != 0 }

    static func install() {
        guard !installed else { return }
        installed = true
        for number in [SIGUSR1, SIGTERM, SIGINT] {
            signal(number) { _ in StopSignal.flag = 1 }
        }
    }
}
