#include "cmpi.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Open MPI's ABI (libmpi.so.40): handles are pointers to exported objects.
typedef void *MPI_Handle;
#define FER_MPI_IN_PLACE ((void *)1)

static void *lib;
static MPI_Handle comm_world, type_float, type_double, type_int64, op_sum, op_min, op_max;
static int (*p_init)(int *, char ***);
static int (*p_finalize)(void);
static int (*p_comm_rank)(MPI_Handle, int *);
static int (*p_comm_size)(MPI_Handle, int *);
static int (*p_allreduce)(const void *, void *, int, MPI_Handle, MPI_Handle, MPI_Handle);
static int (*p_barrier)(MPI_Handle);
static int (*p_abort)(MPI_Handle, int);
static char error_text[512];

const char *fer_mpi_error(void) { return error_text; }

int fer_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) snprintf(error_text, sizeof error_text, "libmpi has no symbol %s (is this Open MPI?)", name);
    return p;
}

int fer_mpi_init(int *rank, int *size) {
    const char *names[] = {"libmpi.so.40", "libmpi.so", NULL};
    for (int i = 0; names[i] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error_text, sizeof error_text, "cannot load Open MPI's libmpi.so.40 (install openmpi-bin): %s", dlerror());
        return -1;
    }
    if (!(p_init = sym("MPI_Init")) || !(p_finalize = sym("MPI_Finalize")) || !(p_comm_rank = sym("MPI_Comm_rank")) ||
        !(p_comm_size = sym("MPI_Comm_size")) || !(p_allreduce = sym("MPI_Allreduce")) || !(p_barrier = sym("MPI_Barrier")) ||
        !(p_abort = sym("MPI_Abort")) || !(comm_world = sym("ompi_mpi_comm_world")) || !(type_float = sym("ompi_mpi_float")) ||
        !(type_double = sym("ompi_mpi_double")) || !(type_int64 = sym("ompi_mpi_long_long_int")) ||
        !(op_sum = sym("ompi_mpi_op_sum")) || !(op_min = sym("ompi_mpi_op_min")) || !(op_max = sym("ompi_mpi_op_max")))
        return -2;
    if (p_init(NULL, NULL) != 0) { snprintf(error_text, sizeof error_text, "MPI_Init failed"); return -3; }
    if (p_comm_rank(comm_world, rank) != 0 || p_comm_size(comm_world, size) != 0) {
        snprintf(error_text, sizeof error_text, "MPI_Comm_rank/size failed");
        return -4;
    }
    return 0;
}

int fer_mpi_finalize(void) { return lib && p_finalize() == 0 ? 0 : -1; }

// MPI counts are int: long buffers go in chunks.
static int allreduce(void *buffer, long count, size_t element, MPI_Handle type, MPI_Handle op) {
    const long chunk = 1L << 28;
    for (long at = 0; at < count; at += chunk) {
        int n = (int)(count - at < chunk ? count - at : chunk);
        if (p_allreduce(FER_MPI_IN_PLACE, (char *)buffer + at * element, n, type, op, comm_world) != 0) {
            snprintf(error_text, sizeof error_text, "MPI_Allreduce of %d values failed", n);
            return -1;
        }
    }
    return 0;
}

int fer_mpi_allreduce_sum_float(float *buffer, long count) { return allreduce(buffer, count, sizeof(float), type_float, op_sum); }
int fer_mpi_allreduce_sum_double(double *buffer, long count) { return allreduce(buffer, count, sizeof(double), type_double, op_sum); }

int fer_mpi_allreduce_minmax_int64(long long *min_buffer, long long *max_buffer, long count) {
    if (allreduce(min_buffer, count, sizeof(long long), type_int64, op_min) != 0) return -1;
    return allreduce(max_buffer, count, sizeof(long long), type_int64, op_max);
}

int fer_mpi_barrier(void) { return p_barrier(comm_world) == 0 ? 0 : -1; }

void fer_mpi_abort(int code) {
    if (lib && p_abort) p_abort(comm_world, code);
    exit(code);
}
