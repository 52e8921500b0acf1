// MTCNN's convolution + PReLU pairs under the oneDNN this file is built against (2.6 or 3.x):
// the convolution and a separate PReLU primitive (what swift-fer runs on oneDNN 2.6), against one
// convolution with a PReLU post-op (oneDNN 2.6 runs that on its reference kernel, `ref`, so it is
// reported and not timed). Built and run by benchmarks/onednn3_compare.sh.
//
//   onednn_prelu_fusion SHAPES [s8|f32]
//     SHAPES: lines "N IC H OC K" (batch, input channels, input side, output channels, kernel side),
//     stride 1, no padding, as MTCNN's layers; int8 (s8) in channels-last layout, as swift-fer runs
//     MTCNN in int8, or f32 in the layouts oneDNN chooses.
// Prints each pair's median time (60 runs of 5 after 10 warm-up runs) and the sums.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { printf("oneDNN error %d at line %d\n", s_, __LINE__); exit(1); } } while (0)

// The memory descriptor API is the main difference between the two versions' C interfaces.
#if DNNL_VERSION_MAJOR >= 3
typedef const_dnnl_memory_desc_t md_ref;
#define REF(x) (x)
static dnnl_status_t make_md(dnnl_memory_desc_t* md, int nd, const dnnl_dims_t dims, dnnl_data_type_t t, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_create_with_tag(md, nd, dims, t, tag);
}
#else
typedef const dnnl_memory_desc_t* md_ref;
#define REF(x) (&(x))
static dnnl_status_t make_md(dnnl_memory_desc_t* md, int nd, const dnnl_dims_t dims, dnnl_data_type_t t, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_init_by_tag(md, nd, dims, t, tag);
}
#endif

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
static int by_value(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return x < y ? -1 : x > y; }

// New memory for `md`, every byte 1 (small s8 values, tiny f32 ones): the data does not change the time.
static dnnl_memory_t bytes_of_one(md_ref md) {
    dnnl_memory_t m; void* p;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_get_data_handle(m, &p));
    memset(p, 1, dnnl_memory_desc_get_size(md));
    return m;
}

// New f32 memory for `md`, every value `value` (biases, scales, slopes).
static dnnl_memory_t floats(md_ref md, float value) {
    dnnl_memory_t m = bytes_of_one(md); float* p;
    CHECK(dnnl_memory_get_data_handle(m, (void**)&p));
    for (size_t i = 0; i < dnnl_memory_desc_get_size(md) / sizeof(float); i++) p[i] = value;
    return m;
}

static const char* implementation(dnnl_primitive_desc_t pd) {
    const char* s; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s); return s;
}

typedef struct { dnnl_primitive_t p; int n; dnnl_exec_arg_t args[8]; } step;

static double median_ms(step* steps, int count) {
    double t[60];
    for (int r = 0; r < 10; r++) for (int i = 0; i < count; i++) CHECK(dnnl_primitive_execute(steps[i].p, stream, steps[i].n, steps[i].args));
    CHECK(dnnl_stream_wait(stream));
    for (int r = 0; r < 60; r++) {
        double start = now_ms();
        for (int k = 0; k < 5; k++) for (int i = 0; i < count; i++) dnnl_primitive_execute(steps[i].p, stream, steps[i].n, steps[i].args);
        dnnl_stream_wait(stream);
        t[r] = (now_ms() - start) / 5;
    }
    qsort(t, 60, sizeof t[0], by_value);
    return t[30];
}

// One convolution (+ PReLU): returns the median time in ms, 0 where oneDNN offers only `ref`.
static double pair(int n, int ic, int h, int oc, int k, int s8, int fused, const char** conv_impl, const char** prelu_impl) {
    dnnl_data_type_t type = s8 ? dnnl_s8 : dnnl_f32;
    dnnl_format_tag_t layout = s8 ? dnnl_acdb : dnnl_format_tag_any;
    dnnl_dims_t src = {n, ic, h, h}, wei = {oc, ic, k, k}, bias = {oc}, dst = {n, oc, h - k + 1, h - k + 1}, slopes = {1, oc, 1, 1};
    dnnl_dims_t strides = {1, 1}, dilation = {0, 0}, padding = {0, 0};
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md, slopes_md, slopes_any;
    CHECK(make_md(&src_md, 4, src, type, layout));
    CHECK(make_md(&wei_md, 4, wei, type, dnnl_format_tag_any));
    CHECK(make_md(&bias_md, 1, bias, dnnl_f32, dnnl_a));
    CHECK(make_md(&dst_md, 4, dst, type, layout));
    CHECK(make_md(&slopes_md, 4, slopes, dnnl_f32, dnnl_abcd));
    CHECK(make_md(&slopes_any, 4, slopes, dnnl_f32, dnnl_format_tag_any));

    dnnl_primitive_attr_t attr; dnnl_post_ops_t post_ops;
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_post_ops_create(&post_ops));
    if (fused) CHECK(dnnl_post_ops_append_prelu(post_ops, 1 << 1));  // one slope per channel
    CHECK(dnnl_primitive_attr_set_post_ops(attr, post_ops));
    dnnl_primitive_desc_t conv_pd;
#if DNNL_VERSION_MAJOR >= 3
    if (s8) CHECK(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_WEIGHTS, 1));  // per output channel, given at execution
    CHECK(dnnl_convolution_forward_primitive_desc_create(&conv_pd, engine, dnnl_forward_inference, dnnl_convolution_auto,
                                                         src_md, wei_md, bias_md, dst_md, strides, dilation, padding, padding, attr));
#else
    (void)dilation;
    if (s8) { float scales[512]; for (int i = 0; i < oc; i++) scales[i] = 0.01f; CHECK(dnnl_primitive_attr_set_output_scales(attr, oc, 1 << 1, scales)); }
    dnnl_convolution_desc_t conv_desc;
    CHECK(dnnl_convolution_forward_desc_init(&conv_desc, dnnl_forward_inference, dnnl_convolution_auto, &src_md, &wei_md, &bias_md, &dst_md,
                                             strides, padding, padding));
    CHECK(dnnl_primitive_desc_create(&conv_pd, &conv_desc, attr, engine, NULL));
#endif
    *conv_impl = implementation(conv_pd);
    if (fused && strncmp(*conv_impl, "ref", 3) == 0) return 0;

    step steps[2];
    int count = 1;
    CHECK(dnnl_primitive_create(&steps[0].p, conv_pd));
    md_ref conv_dst = dnnl_primitive_desc_query_md(conv_pd, dnnl_query_dst_md, 0);
    dnnl_memory_t dst_mem = bytes_of_one(conv_dst);
    dnnl_exec_arg_t* a = steps[0].args;
    int i = 0;
    a[i++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, bytes_of_one(dnnl_primitive_desc_query_md(conv_pd, dnnl_query_src_md, 0))};
    a[i++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bytes_of_one(dnnl_primitive_desc_query_md(conv_pd, dnnl_query_weights_md, 0))};
    a[i++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, floats(REF(bias_md), 0.5f)};
    a[i++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst_mem};
#if DNNL_VERSION_MAJOR >= 3
    if (s8) {
        dnnl_memory_desc_t scales_md; dnnl_dims_t scales = {oc};
        CHECK(make_md(&scales_md, 1, scales, dnnl_f32, dnnl_a));
        a[i++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, floats(scales_md, 0.01f)};
    }
#endif
    if (fused) a[i++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_WEIGHTS, floats(REF(slopes_md), -0.25f)};
    steps[0].n = i;

    if (!fused) {  // the separate PReLU, slopes in the layout oneDNN picks (as swift-fer's PReLU layer)
        dnnl_primitive_desc_t prelu_pd;
#if DNNL_VERSION_MAJOR >= 3
        CHECK(dnnl_prelu_forward_primitive_desc_create(&prelu_pd, engine, dnnl_forward_inference, conv_dst, slopes_any, conv_dst, NULL));
#else
        dnnl_prelu_desc_t prelu_desc;
        CHECK(dnnl_prelu_forward_desc_init(&prelu_desc, dnnl_forward_inference, conv_dst, &slopes_any));
        CHECK(dnnl_primitive_desc_create(&prelu_pd, &prelu_desc, NULL, engine, NULL));
#endif
        *prelu_impl = implementation(prelu_pd);
        CHECK(dnnl_primitive_create(&steps[1].p, prelu_pd));
        steps[1].args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, dst_mem};
        steps[1].args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, floats(dnnl_primitive_desc_query_md(prelu_pd, dnnl_query_weights_md, 0), -0.25f)};
        steps[1].args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, bytes_of_one(conv_dst)};
        steps[1].n = 3;
        count = 2;
    }
    return median_ms(steps, count);
}

int main(int argc, char** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s SHAPES [s8|f32]\n", argv[0]); return 2; }
    int s8 = argc < 3 || strcmp(argv[2], "f32") != 0;
    FILE* shapes = fopen(argv[1], "r");
    if (!shapes) { perror(argv[1]); return 1; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    const dnnl_version_t* v = dnnl_version();
    printf("oneDNN %d.%d.%d, %s\n", v->major, v->minor, v->patch, s8 ? "int8 (s8, channels-last)" : "f32");
    double apart = 0, fused_sum = 0;
    int n, ic, h, oc, k;
    while (fscanf(shapes, "%d %d %d %d %d", &n, &ic, &h, &oc, &k) == 5) {
        const char *conv_impl, *prelu_impl = "", *fused_impl;
        double t_apart = pair(n, ic, h, oc, k, s8, 0, &conv_impl, &prelu_impl);
        double t_fused = pair(n, ic, h, oc, k, s8, 1, &fused_impl, &prelu_impl);
        apart += t_apart;
        fused_sum += t_fused > 0 ? t_fused : t_apart;  // where fusing means `ref`, the pair stays apart
        char shape[64]; snprintf(shape, sizeof shape, "%dx%dx%dx%d -> %d, %dx%d", n, ic, h, h, oc, k, k);
        printf("%-26s apart %8.1f us (%s + %s)   fused ", shape, t_apart * 1e3, conv_impl, prelu_impl);
        if (t_fused > 0) printf("%8.1f us (%s)\n", t_fused * 1e3, fused_impl); else printf("      -    (%s: not timed)\n", fused_impl);
    }
    printf("sum: apart %.3f ms, fused where a JIT kernel takes it %.3f ms (%.2fx)\n", apart, fused_sum, apart / fused_sum);
    return 0;
}
