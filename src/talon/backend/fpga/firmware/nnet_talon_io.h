// Host side of a talon HLS project: the Input quantization q = clip(rint(x / s), -top, top)
// (round half to even, as numpy's rint) applied before the data enters the accelerator, and the
// C-simulation loader of the parameter files.
#ifndef NNET_TALON_IO_H_
#define NNET_TALON_IO_H_

#include <cmath>
#include <cstdio>
#include <string>

#include "nnet_talon_common.h"

namespace talon {

template <class T, int N> void quantize_input(const double x[N], T q[N], double scale, wide_t top) {
    for (int i = 0; i < N; i++) {
        const double r = std::nearbyint(x[i] / scale);
        const double c = r > (double)top ? (double)top : (r < -(double)top ? -(double)top : r);
        q[i] = T((wide_t)c);
    }
}

// C simulation: parameters are read from <dir>/<name>.bin (int64 or float64, C order).
template <class T, int N> bool load_integers(const char *dir, const char *name, T x[N]) {
    const std::string path = std::string(dir) + "/" + name + ".bin";
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    static long long buf[N];
    const bool ok = std::fread(buf, sizeof(long long), N, f) == (size_t)N;
    std::fclose(f);
    for (int i = 0; i < N; i++)
        x[i] = T(buf[i]);
    return ok;
}

template <class T, int N> bool load_doubles(const char *dir, const char *name, T x[N]) {
    const std::string path = std::string(dir) + "/" + name + ".bin";
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    const bool ok = std::fread(x, sizeof(double), N, f) == (size_t)N;
    std::fclose(f);
    return ok;
}

} // namespace talon

#endif
