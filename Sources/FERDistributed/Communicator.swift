import CMPI
import Foundation

public enum DistributedError: Error, CustomStringConvertible {
    case mpi(String)
    case disagreement(String)

    public var description: String {
        switch self {
        case .mpi(let m): return "MPI: \(m)"
        case .disagreement(let m): return "the ranks disagree: \(m)"
        }
    }
}

/// The processes of a data-parallel job. Started by mpirun (or srun with PMIx), it is MPI_COMM_WORLD,
/// with Open MPI loaded at run time; started alone, it is one rank and every collective is a no-op,
/// so `fer` needs no MPI to build or to run on one machine.
public final class Communicator: @unchecked Sendable {  // one per process, used by the training thread alone; MPI calls are not made concurrently
    public let rank: Int
    public let size: Int
    private let mpi: Bool
    /// Bytes this rank has sent into reductions, and the seconds they took (for the benchmark).
    public private(set) var reducedBytes = 0
    public private(set) var reduceSeconds = 0.0

    public var isRoot: Bool { rank == 0 }

    private init(rank: Int, size: Int, mpi: Bool) {
        self.rank = rank
        self.size = size
        self.mpi = mpi
    }

    /// A single process.
    public static let single = Communicator(rank: 0, size: 1, mpi: false)

    /// Whether this process was started as a rank of an MPI job.
    public static var launchedByMPI: Bool { fer_mpi_launched() != 0 }

    /// The job's communicator: MPI_COMM_WORLD under mpirun/srun, `single` otherwise.
    public static func world() throws -> Communicator {
        guard launchedByMPI else { return single }
        var rank: Int32 = 0, size: Int32 = 0
        guard fer_mpi_init(&rank, &size) == 0 else { throw DistributedError.mpi(String(cString: fer_mpi_error())) }
        return Communicator(rank: Int(rank), size: Int(size), mpi: true)
    }

    /// Sums `values` over the ranks, in place.
    public func sum(_ values: inout [Float]) throws {
        guard mpi, size > 1 else { return }
        let t = Date()
        let status = values.withUnsafeMutableBufferPointer { fer_mpi_allreduce_sum_float($0.baseAddress, $0.count) }
        guard status == 0 else { throw DistributedError.mpi(String(cString: fer_mpi_error())) }
        reducedBytes += values.count * 4
        reduceSeconds += Date().timeIntervalSince(t)
    }

    public func sum(_ values: inout [Double]) throws {
        guard mpi, size > 1 else { return }
        let status = values.withUnsafeMutableBufferPointer { fer_mpi_allreduce_sum_double($0.baseAddress, $0.count) }
        guard status == 0 else { throw DistributedError.mpi(String(cString: fer_mpi_error())) }
    }

    /// Throws unless every rank passed the same values (`what` names them in the error).
    public func agree(_ values: [Int64], on what: String) throws {
        guard mpi, size > 1 else { return }
        var lo = values.map { Int64($0) }, hi = lo
        let status = lo.withUnsafeMutableBufferPointer { l in
            hi.withUnsafeMutableBufferPointer { h in fer_mpi_allreduce_minmax_int64(l.baseAddress, h.baseAddress, l.count) }
        }
        guard status == 0 else { throw DistributedError.mpi(String(cString: fer_mpi_error())) }
        guard lo == hi else { throw DistributedError.disagreement("\(what) differs between ranks (rank \(rank) has its own)") }
    }

    public func barrier() throws {
        guard mpi, size > 1 else { return }
        guard fer_mpi_barrier() == 0 else { throw DistributedError.mpi(String(cString: fer_mpi_error())) }
    }

    /// Ends MPI cleanly (every rank calls it once, at the end).
    public func finish() {
        if mpi { _ = fer_mpi_finalize() }
    }

    /// Ends the whole job: a failing rank takes the others down instead of leaving them waiting.
    public func abort(_ code: Int32) -> Never {
        if mpi && size > 1 { fer_mpi_abort(code) }
        exit(code)
    }
}

/// This process's place in a job that runs many copies of one command (mpirun, srun, a job array),
/// read from the launcher's environment; nil when started alone.
public func launcherShard(_ env: [String: String] = ProcessInfo.processInfo.environment) -> (index: Int, count: Int)? {
    for (rank, size) in [("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"), ("PMI_RANK", "PMI_SIZE")] {
        if let r = env[rank].flatMap(Int.init), let n = env[size].flatMap(Int.init), n >= 1, r >= 0, r < n { return (r, n) }
    }
    return nil
}
