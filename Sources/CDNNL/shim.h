#pragma once
#include <dlfcn.h>
#include <malloc.h>
#include <oneapi/dnnl/dnnl.h>

// Debian's oneDNN runs on the GNU OpenMP runtime (libgomp, loaded with libdnnl). OMP_NUM_THREADS is
// read only once, when libgomp loads, so the thread count is set through the runtime's own function,
// looked up at run time (Debian ships no unversioned libgomp.so to link against).
static inline int fer_set_omp_threads(int n) {
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!set) return -1;
    set(n);
    return 0;
}
static inline int fer_omp_max_threads(void) {
    int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    return get ? get() : 1;
}

// DNNL_MEMORY_ALLOCATE is a cast macro, which Swift does not import.
static inline void *fer_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }

// Activations are tens of megabytes, freed and re-allocated every step. Above glibc's mmap
// threshold each would be a fresh mapping, page-faulted in again every step; raising the thresholds
// keeps them on the heap, where the allocator reuses the same pages.
static inline void fer_keep_large_allocations_on_heap(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
