// Integer convolution (Conv1d as a 1 x N Conv2d) and pooling, channels first, PyTorch geometry
// (stride, zero padding, dilation, groups): acc = sat_ACC(sum_k w_k x_k + b), summed exactly.
//
// hls4ml's own conv2d pads through a separate layer, has no dilation or groups and works channels
// last, so talon's convolution is written here to reproduce the CPU backend's integers directly.
//
// One output position per pipeline round at II = reuse_factor, its taps unrolled (so
// ceil(taps / reuse_factor) multipliers). The strategy decides where the weights live, as in
// hls4ml: conv2d (Latency) partitions them completely into registers; conv2d_resource (Resource,
// reuse_factor > 1) keeps them in a BRAM ROM reshaped into words of block_factor =
// ceil(taps / reuse_factor) consecutive weights, the taps of one output channel a round reads.
// The arithmetic, and so the C simulation, is the same.
#ifndef NNET_TALON_CONV_H_
#define NNET_TALON_CONV_H_

#include "nnet_talon_common.h"

namespace talon {

struct conv_config {
    static const int c_in = 1, h = 1, w = 1;
    static const int c_out = 1, ho = 1, wo = 1;
    static const int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
    static const int groups = 1;
    static const int acc_bits = 32;
    static const int reuse_factor = 1;
    static const int block_factor = 1;
};

template <class CFG, class W_T, class B_T>
void conv2d_body(const wide_t x[CFG::c_in * CFG::h * CFG::w], wide_t y[CFG::c_out * CFG::ho * CFG::wo],
                 const W_T weights[CFG::c_out * (CFG::c_in / CFG::groups) * CFG::kh * CFG::kw],
                 const B_T biases[CFG::c_out]) {
    #pragma HLS INLINE
    const int cin_g = CFG::c_in / CFG::groups;
    const int cout_g = CFG::c_out / CFG::groups;
ConvOut:
    for (int co = 0; co < CFG::c_out; co++) {
        const int g = co / cout_g;
        for (int oh = 0; oh < CFG::ho; oh++) {
            for (int ow = 0; ow < CFG::wo; ow++) {
                #pragma HLS PIPELINE II = CFG::reuse_factor
                wide_t acc = 0;
            ConvTaps:
                for (int ci = 0; ci < cin_g; ci++) {
                    const int c = g * cin_g + ci;
                    for (int i = 0; i < CFG::kh; i++) {
                        const int ih = oh * CFG::sh - CFG::ph + i * CFG::dh;
                        if (ih < 0 || ih >= CFG::h)
                            continue;
                        for (int j = 0; j < CFG::kw; j++) {
                            const int iw = ow * CFG::sw - CFG::pw + j * CFG::dw;
                            if (iw < 0 || iw >= CFG::w)
                                continue;
                            acc += wide(weights[((co * cin_g + ci) * CFG::kh + i) * CFG::kw + j]) * x[(c * CFG::h + ih) * CFG::w + iw];
                        }
                    }
                }
                y[(co * CFG::ho + oh) * CFG::wo + ow] = saturate<CFG::acc_bits>(acc + wide(biases[co]));
            }
        }
    }
}

template <class CFG, class W_T, class B_T>
void conv2d(const wide_t x[CFG::c_in * CFG::h * CFG::w], wide_t y[CFG::c_out * CFG::ho * CFG::wo],
            const W_T weights[CFG::c_out * (CFG::c_in / CFG::groups) * CFG::kh * CFG::kw], const B_T biases[CFG::c_out]) {
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    conv2d_body<CFG, W_T, B_T>(x, y, weights, biases);
}

template <class CFG, class W_T, class B_T>
void conv2d_resource(const wide_t x[CFG::c_in * CFG::h * CFG::w], wide_t y[CFG::c_out * CFG::ho * CFG::wo],
                     const W_T weights[CFG::c_out * (CFG::c_in / CFG::groups) * CFG::kh * CFG::kw],
                     const B_T biases[CFG::c_out]) {
    #pragma HLS ARRAY_RESHAPE variable=weights cyclic factor=CFG::block_factor
    #pragma HLS ARRAY_PARTITION variable=biases complete
    if (CFG::reuse_factor > 1) {
        #pragma HLS RESOURCE variable=weights core=ROM_nP_BRAM
    }
    conv2d_body<CFG, W_T, B_T>(x, y, weights, biases);
}

enum pool_op { pool_max = 0, pool_sum = 1 };

struct pool_config {
    static const int c = 1, h = 1, w = 1, ho = 1, wo = 1;
    static const int kh = 2, kw = 2, sh = 2, sw = 2, ph = 0, pw = 0, dh = 1, dw = 1;
    static const int op = pool_max;
    static const int acc_bits = 32;
};

// Max: padding is -2^62 (below every value); sum (SumPool, and AvgPool whose 1/divisor is folded
// into the scale): padding is 0 and the sum saturates to acc_bits.
template <class CFG> void pool2d(const wide_t x[CFG::c * CFG::h * CFG::w], wide_t y[CFG::c * CFG::ho * CFG::wo]) {
    const wide_t pad = CFG::op == pool_max ? -(wide_t(1) << 62) : 0;
PoolOut:
    for (int c = 0; c < CFG::c; c++) {
        for (int oh = 0; oh < CFG::ho; oh++) {
            for (int ow = 0; ow < CFG::wo; ow++) {
                #pragma HLS PIPELINE
                wide_t acc = CFG::op == pool_max ? pad : 0;
                for (int i = 0; i < CFG::kh; i++) {
                    for (int j = 0; j < CFG::kw; j++) {
                        const int ih = oh * CFG::sh - CFG::ph + i * CFG::dh;
                        const int iw = ow * CFG::sw - CFG::pw + j * CFG::dw;
                        const bool inside = ih >= 0 && ih < CFG::h && iw >= 0 && iw < CFG::w;
                        const wide_t v = inside ? x[(c * CFG::h + ih) * CFG::w + iw] : pad;
                        if (CFG::op == pool_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                    }
                }
                y[(c * CFG::ho + oh) * CFG::wo + ow] = CFG::op == pool_max ? acc : saturate<CFG::acc_bits>(acc);
            }
        }
    }
}

} // namespace talon

#endif
