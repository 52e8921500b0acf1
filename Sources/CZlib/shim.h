#pragma once
#include <zlib.h>
// inflateInit2 is a macro; this wraps it for Swift.
static inline int fer_inflate_init_gzip(z_streamp s) { return inflateInit2(s, 15 + 32); }
