#pragma once
// Open MPI, loaded at run time (dlopen) only when a process is started by mpirun/srun: building and
// running fer alone needs no MPI at all. Handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM...) are Open
// MPI's exported globals, found with dlsym. Every function returns 0 on success, negative on failure;
// fer_mpi_error() says why.
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the environment says this process is a rank of an MPI job (OMPI_COMM_WORLD_SIZE or PMIX_RANK set).
int fer_mpi_launched(void);
/// Loads libmpi and calls MPI_Init; fills rank and size.
int fer_mpi_init(int *rank, int *size);
int fer_mpi_finalize(void);
/// In-place sums over all ranks.
int fer_mpi_allreduce_sum_float(float *buffer, long count);
int fer_mpi_allreduce_sum_double(double *buffer, long count);
/// In-place minimum and maximum of 64-bit integers over all ranks.
int fer_mpi_allreduce_minmax_int64(long long *min_buffer, long long *max_buffer, long count);
int fer_mpi_barrier(void);
/// Ends the whole job with this exit code (every rank).
void fer_mpi_abort(int code);
const char *fer_mpi_error(void);

#ifdef __cplusplus
}
#endif
