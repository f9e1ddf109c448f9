// Host side of a talon HLS project: the Input quantization q = clip(rint(x / s), -top, top)
// (round half to even, as numpy's rint) applied before the data enters the accelerator, and the
// C-simulation loader of the parameter files.
#ifndef NNET_TALON_IO_H_
#define NNET_TALON_IO_H_

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <string>

#include "nnet_talon_common.h"

namespace talon {

// rint(r) in the default rounding mode (to nearest, ties to even), as numpy's rint: for |r| < 2^52,
// |r| + 2^52 lies where the doubles are the integers, so the addition itself rounds |r|; the
// subtraction is exact and the sign is put back (rint is odd). Larger |r|, inf and nan are
// returned as they are, as rint does. std::nearbyint is a library call per value without
// SSE4.1; it is used where double arithmetic may carry excess precision (x87) or -ffast-math
// could reassociate the pair.
inline double round_half_even(double r) {
#if FLT_EVAL_METHOD == 0 && !defined(__FAST_MATH__)
    const double two52 = 4503599627370496.0;
    const double a = std::fabs(r);
    const double rounded = std::copysign((a + two52) - two52, r);
    return a < two52 ? rounded : r;
#else
    return std::nearbyint(r);
#endif
}

// q = clip(rint(x / scale), -top, top): the integers first, without branches (spike trains
// make any test on the value unpredictable), then one conversion per element into T. When
// scale is a power of two whose reciprocal is a double too (talon's scale for spikes, counts
// and dyadic inputs), x * (1 / scale) is the same correctly rounded real x / scale, without a
// division.
template <class T, int N> void quantize_input(const double x[N], T q[N], double scale, wide_t top) {
    static wide_t n[N];
    const double hi = (double)top;
    int exponent;
    const double inverse = 1.0 / scale;
    if (std::frexp(scale, &exponent) == 0.5 && std::isfinite(inverse) && inverse * scale == 1.0) {
        for (int i = 0; i < N; i++) {
            const double r = round_half_even(x[i] * inverse);
            n[i] = (wide_t)(r > hi ? hi : (r < -hi ? -hi : r));
        }
    } else {
        for (int i = 0; i < N; i++) {
            const double r = round_half_even(x[i] / scale);
            n[i] = (wide_t)(r > hi ? hi : (r < -hi ? -hi : r));
        }
    }
    for (int i = 0; i < N; i++)
        q[i] = T(n[i]);
}

// N input values of `bytes` each (4: float32, 8: float64) as doubles; false on a short file.
template <int N> bool read_values(FILE *f, int bytes, double x[N]) {
    if (bytes == 8)
        return std::fread(x, sizeof(double), N, f) == (size_t)N;
    static float buf[N];
    if (std::fread(buf, sizeof(float), N, f) != (size_t)N)
        return false;
    for (int i = 0; i < N; i++)
        x[i] = buf[i];
    return true;
}

// C simulation: parameters are read from <dir>/<name>.bin (C order): integers stored as S (the
// narrowest of int8 ... int64 that holds the type's width), doubles as float64.
template <class T, int N, class S> bool load_integers(const char *dir, const char *name, T x[N]) {
    const std::string path = std::string(dir) + "/" + name + ".bin";
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    static S buf[N];
    const bool ok = std::fread(buf, sizeof(S), N, f) == (size_t)N && std::fgetc(f) == EOF;
    std::fclose(f);
    for (int i = 0; i < N; i++)
        x[i] = T((long long)buf[i]);
    return ok;
}

template <class T, int N> bool load_doubles(const char *dir, const char *name, T x[N]) {
    const std::string path = std::string(dir) + "/" + name + ".bin";
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    const bool ok = std::fread(x, sizeof(double), N, f) == (size_t)N && std::fgetc(f) == EOF;
    std::fclose(f);
    return ok;
}

} // namespace talon

#endif
