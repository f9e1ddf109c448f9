// Dense layer (Affine / SpikingAffine / Linear) as an hls4ml dense kernel: the generated code calls
// nnet::dense<data_T, res_T, CONFIG> and CONFIG::kernel selects talon::DenseExact, the hook
// hls4ml's own Latency / Resource kernels use.
//
//   acc_j = b_j + sum_i x_i w_ij   summed exactly (talon proves every partial sum below 2^62)
//   res_j = cast(accum_t(acc_j))   hls4ml's cast, as its Latency kernel ends (CONFIG::accum_t is
//                                  ap_int<64>; res_T is ap_fixed<a, a, AP_TRN, AP_SAT> where the
//                                  CPU backend saturates, else the output's own ap_int)
//
// Same products, types and pragmas as hls4ml's dense_latency (the weights partitioned completely,
// into registers, as its commented-out pragma would); the sum is organised for the
// widths talon proves (CONFIG, written by talon.backend.fpga.codegen):
//  * sum_t, a native integer holding b_j plus any partial sum (int when it fits 32 bits);
//  * the rows are summed in blocks of CONFIG::block rows into part_t, a native integer holding
//    any sum of `block` products (short for 8-bit weights on spikes: blocks of 258 rows), and
//    each block is then added to acc_j: an adder tree whose first levels are narrow;
//  * an input that is zero contributes nothing and its row is skipped. In hardware every
//    product is still there (the loops are fully unrolled under the pipeline; the test is a
//    multiplexer on each product); in C simulation a spiking layer only reads the weight rows
//    of the inputs that spiked, in memory order ([n_in][n_out], as hls4ml lays them out).
// Every intermediate fits its type, so the result is the exact integer sum whatever the order:
// the CPU backend's integers (tests/fpga/test_csim_exact.py).
//
// strategy = resource (hls4ml's Resource strategy, talon::DenseResourceExact): the structure of
// hls4ml's dense_resource. The weights are stored transposed ([n_out][n_in], as hls4ml's
// Resource strategy stores them) and, when reuse_factor > 1, in BRAM, reshaped into
// reuse_factor words of block_factor = ceil(n_in * n_out / reuse_factor) weights each. The
// ReuseLoop runs reuse_factor rounds at II=1; round r reads word r and does block_factor
// multiply-accumulates with the weights r, r + R, r + 2R, ... (weight w belongs to input
// w % n_in and output w / n_in, found by counting, not dividing). Every reuse factor >= 1 is
// valid (a last, short round skips the indices past n_in * n_out). The accumulators are
// CONFIG::sum_t, which holds any partial sum, so this order is exact too.
#ifndef NNET_TALON_DENSE_H_
#define NNET_TALON_DENSE_H_

#include "nnet_talon_common.h"
#include "nnet_utils/nnet_dense.h"

namespace talon {

template <class data_T, class res_T, typename CONFIG_T>
void dense_exact(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                 typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                 typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
    typedef typename CONFIG_T::sum_t sum_t;
    typedef typename CONFIG_T::part_t part_t;
    sum_t acc[CONFIG_T::n_out];
    part_t part[CONFIG_T::n_out];

    #pragma HLS function_instantiate variable=weights,biases
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    #pragma HLS ARRAY_PARTITION variable=acc complete
    #pragma HLS ARRAY_PARTITION variable=part complete
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit

DenseBias:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        acc[j] = (sum_t)wide(biases[j]);
    }
DenseBlocks:
    for (unsigned b = 0; b < (CONFIG_T::n_in + CONFIG_T::block - 1) / CONFIG_T::block; b++) {
        for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
            part[j] = 0;
        }
    DenseRows:
        for (unsigned k = 0; k < CONFIG_T::block; k++) {
            const unsigned i = b * CONFIG_T::block + k;
            if (i >= CONFIG_T::n_in)
                continue; // past the end of a short last block
            const part_t x = (part_t)wide(data[i]);
            if (x == 0)
                continue;
        DenseCols:
            for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
                part[j] += x * (part_t)wide(weights[i * CONFIG_T::n_out + j]);
            }
        }
        for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
            acc[j] += part[j];
        }
    }
DenseResult:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        res[j] = nnet::cast<data_T, res_T, CONFIG_T>((typename CONFIG_T::accum_t)acc[j]);
    }
}

template <class data_T, class res_T, typename CONFIG_T>
class DenseExact : public nnet::DenseKernel<data_T, res_T, CONFIG_T> {
  public:
    static void dense(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                      typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                      typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
        #pragma HLS INLINE
        dense_exact<data_T, res_T, CONFIG_T>(data, res, weights, biases);
    }
};

template <class data_T, class res_T, typename CONFIG_T>
void dense_resource_exact(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                          typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                          typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
    typedef typename CONFIG_T::sum_t sum_t;
    const unsigned n_in = CONFIG_T::n_in;
    const unsigned n_weights = CONFIG_T::n_in * CONFIG_T::n_out;
    const unsigned reuse = CONFIG_T::reuse_factor;
    sum_t acc[CONFIG_T::n_out];

    #pragma HLS function_instantiate variable=weights,biases
    #pragma HLS ARRAY_RESHAPE variable=weights block factor=CONFIG_T::block_factor
    #pragma HLS ARRAY_PARTITION variable=biases complete
    #pragma HLS ARRAY_PARTITION variable=acc complete
    if (CONFIG_T::reuse_factor > 1) {
        #pragma HLS RESOURCE variable=weights core=ROM_nP_BRAM
    }

InitAccum:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        #pragma HLS UNROLL
        acc[j] = (sum_t)wide(biases[j]);
    }
ReuseLoop:
    for (unsigned r = 0; r < reuse; r++) {
        #pragma HLS PIPELINE II=1 rewind
        unsigned w = r;
        unsigned in_index = r % n_in;
        unsigned out_index = r / n_in;
    MultLoop:
        for (unsigned m = 0; m < CONFIG_T::block_factor; m++) {
            #pragma HLS UNROLL
            if (w < n_weights) {
                const sum_t x = (sum_t)wide(data[in_index]);
                if (x != 0)
                    acc[out_index] += x * (sum_t)wide(weights[w]);
            }
            w += reuse;
            in_index += reuse % n_in;
            out_index += reuse / n_in;
            if (in_index >= n_in) {
                in_index -= n_in;
                out_index++;
            }
        }
    }
Result:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        #pragma HLS UNROLL
        res[j] = nnet::cast<data_T, res_T, CONFIG_T>((typename CONFIG_T::accum_t)acc[j]);
    }
}

template <class data_T, class res_T, typename CONFIG_T>
class DenseResourceExact : public nnet::DenseKernel<data_T, res_T, CONFIG_T> {
  public:
    static void dense(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                      typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                      typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
        #pragma HLS INLINE
        dense_resource_exact<data_T, res_T, CONFIG_T>(data, res, weights, biases);
    }
};

} // namespace talon

#endif
