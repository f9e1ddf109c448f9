// talon fixed-point primitives for HLS (docs/fpga.md §3): the integer operations of the CPU
// backend's fixed-point datapath (docs/backend.md §4.2), written once for C simulation and synthesis.
//
// Values live in ap_int<W> arrays whose width W is proven by the compiler (talon's static bounds);
// arithmetic is done in `wide_t`, a 64-bit integer: talon refuses at compile time any layer whose
// intermediates could reach 2^62, so no wide_t operation can overflow.
#ifndef NNET_TALON_COMMON_H_
#define NNET_TALON_COMMON_H_

#include "ap_fixed.h"
#include "ap_int.h"

namespace talon {

typedef long long wide_t;

template <class T> inline wide_t wide(const T &x) { return x.to_int64(); }
inline wide_t wide(long long x) { return x; }
inline wide_t wide(int x) { return x; }

// Index of element i in a parameter array of N entries: N == 1 broadcasts one value.
template <int N> inline int at(int i) { return N == 1 ? 0 : i; }

// numpy's int64 shifts: a shift by 64 or more gives 0 (left) or the sign (right).
inline wide_t lshift(wide_t a, int k) { return k >= 64 ? 0 : (wide_t)((unsigned long long)a << k); }
inline wide_t rshift(wide_t a, int k) { return k >= 64 ? (a < 0 ? -1 : 0) : (a >> k); }

// rs(a, k) = floor((a + 2^(k-1)) / 2^k): an arithmetic shift rounding half up; rs(a, 0) = a.
inline wide_t round_shift(wide_t a, int k) { return k <= 0 ? a : rshift(a + lshift(1, k - 1), k); }

// Two's-complement saturation to BITS bits.
template <int BITS> inline wide_t saturate(wide_t a) {
    const wide_t hi = (wide_t(1) << (BITS - 1)) - 1;
    const wide_t lo = -hi - 1;
    return a > hi ? hi : (a < lo ? lo : a);
}

// Symmetric clip to [-top, top] (the activation range of a weight layer's input).
inline wide_t clip(wide_t a, wide_t top) { return a > top ? top : (a < -top ? -top : a); }

// ---- fan-in: sum the incoming edges (optionally rescaled), then saturate or clip ----------------

template <int N> void zero(wide_t acc[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        acc[i] = 0;
    }
}

template <class T, int N> void add(const T x[N], wide_t acc[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        acc[i] += wide(x[i]);
    }
}

// acc += rs(x * m, shift): a rescaling by the real ratio m / 2^shift (per element or broadcast).
template <class T, int N, int NM, int NS>
void add_scaled(const T x[N], const wide_t m[NM], const int shift[NS], wide_t acc[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        acc[i] += round_shift(wide(x[i]) * m[at<NM>(i)], shift[at<NS>(i)]);
    }
}

template <int N, int BITS> void saturate_all(wide_t acc[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        acc[i] = saturate<BITS>(acc[i]);
    }
}

template <int N> void clip_all(wide_t acc[N], wide_t top) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        acc[i] = clip(acc[i], top);
    }
}

// Store integers proven to fit (or saturated by T itself, for ap_fixed<W, W, AP_TRN, AP_SAT>).
// Every store into an ap_int array in these headers is written `y = T(value)`: the same value as
// `y = value`, but the C-simulation ap_types build it several times faster (a constructor and a
// copy instead of the generic assignment from an integer), and synthesis sees the same cast.
template <class S, class T, int N> void store(const S x[N], T y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        y[i] = T(wide(x[i]));
    }
}

// State arrays are zeroed between samples.
template <class T, int N> void clear(T x[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        x[i] = T(0);
    }
}

} // namespace talon

#endif
