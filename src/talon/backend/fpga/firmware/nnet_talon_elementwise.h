// Stateless elementwise and routing layers of talon's fixed-point datapath (docs/backend.md §4.3):
// Scale (sign; |s| is folded into the scale), ReLU / PReLU / LeakyReLU (slope multiplier),
// BatchNorm (x * sign * 2^k + bias, saturating), Threshold (integer comparison), Concat and
// ChannelSplit (block copies along one axis).
#ifndef NNET_TALON_ELEMENTWISE_H_
#define NNET_TALON_ELEMENTWISE_H_

#include "nnet_talon_common.h"

namespace talon {

template <int N, int NS> void scale_sign(const wide_t x[N], const wide_t sign[NS], wide_t y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        y[i] = x[i] * sign[at<NS>(i)];
    }
}

template <int N> void relu(const wide_t x[N], wide_t y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        y[i] = x[i] > 0 ? x[i] : 0;
    }
}

// Negative inputs times the slope multiplier m / 2^shift.
template <int N, int NM, int NS> void leaky_relu(const wide_t x[N], const wide_t m[NM], const int shift[NS], wide_t y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        y[i] = x[i] > 0 ? x[i] : round_shift(x[i] * m[at<NM>(i)], shift[at<NS>(i)]);
    }
}

template <int N, int NS, int NB, int ACC>
void batchnorm(const wide_t x[N], const wide_t sign[NS], const wide_t bias[NB], wide_t y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        y[i] = saturate<ACC>(x[i] * sign[at<NS>(i)] + bias[at<NB>(i)]);
    }
}

// Threshold: q >= ceil(theta / s) ('>=') or q > floor(theta / s) ('>'); theta is exact in double.
template <int N, int NT, bool GE> void threshold(const wide_t x[N], const double theta[NT], wide_t y[N]) {
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        const double v = (double)x[i];
        y[i] = GE ? (v >= theta[at<NT>(i)]) : (v > theta[at<NT>(i)]);
    }
}

// Concat: input k (OUTER blocks of CHUNK elements) goes to offset OFFSET of every block of TOTAL.
template <class T, int OUTER, int CHUNK, int TOTAL, int OFFSET> void concat_part(const T x[OUTER * CHUNK], wide_t y[OUTER * TOTAL]) {
    for (int o = 0; o < OUTER; o++) {
        for (int c = 0; c < CHUNK; c++) {
            #pragma HLS UNROLL
            y[o * TOTAL + OFFSET + c] = wide(x[o * CHUNK + c]);
        }
    }
}

// ChannelSplit: the section at OFFSET (CHUNK of every block of TOTAL) to output y.
template <int OUTER, int CHUNK, int TOTAL, int OFFSET> void split_part(const wide_t x[OUTER * TOTAL], wide_t y[OUTER * CHUNK]) {
    for (int o = 0; o < OUTER; o++) {
        for (int c = 0; c < CHUNK; c++) {
            #pragma HLS UNROLL
            y[o * CHUNK + c] = x[o * TOTAL + OFFSET + c];
        }
    }
}

} // namespace talon

#endif
