// talon's integer neurons (docs/semantics.md §3 in fixed point, docs/backend.md §4.4):
// LIF, IF, CubaLIF (spiking), LI, CubaLI, Integrator (membrane output), one step per call, the
// state kept in the caller's static arrays between calls and cleared between samples.
//
// With F = coefficient bits, sat = state_bits saturation and rs(a) = floor((a + 2^(F-1)) / 2^F):
//
//   z_prev = cmp(v, THETA)
//   if timing == delayed_pre_decay: v = R(v, z_prev)
//   i = sat(rs(A*i + drive))                     (Cuba; then drive := G*i)
//   u = sat(rs(B*v + drive) + C)
//   if timing in (delayed, snntorch_immediate): u = R(u, z_prev)
//   z = cmp(u, THETA)
//   if timing == immediate: u = R(u, z)
//   if timing == snntorch_immediate: u = sat(u - (z - z_prev)*THETA)
//   v = u; spike = z (post) or z_prev (pre)
//
// R is V_RESET where z (value), sat(u - z*THETA) (subtract) or u (none). `drive` is the sum over
// the incoming edges of G_e * x_e, formed by drive_add (one gain per edge and element).
#ifndef NNET_TALON_NEURON_H_
#define NNET_TALON_NEURON_H_

#include "nnet_talon_common.h"

namespace talon {

enum reset_mode { reset_value = 0, reset_subtract = 1, reset_none = 2 };
enum reset_timing { timing_immediate = 0, timing_delayed = 1, timing_delayed_pre_decay = 2, timing_snntorch_immediate = 3 };

struct neuron_config {
    static const int n = 1;
    static const int state_bits = 24;
    static const int frac = 16;
    static const bool cuba = false;
    static const bool spiking = true;
    static const bool ge = true;   // comparison '>=' (else '>')
    static const bool post = true; // spike_timing 'post' (else 'pre')
    static const int mode = reset_value;
    static const int timing = timing_immediate;
    static const int n_b = 1, n_c = 1, n_a = 1, n_g = 1, n_theta = 1, n_reset = 1;
    static const int reuse_factor = 1;     // the layer's reuse factor: one step in II = reuse_factor
    static const int multiplier_limit = 1; // ceil(multipliers / reuse_factor), as hls4ml's dense
};

// drive += G_e * x_e for one incoming edge e.
template <class T, int N, int NG> void drive_add(const T x[N], const wide_t gain[NG], wide_t drive[N]) {
    for (int k = 0; k < N; k++) {
        #pragma HLS UNROLL
        drive[k] += gain[at<NG>(k)] * wide(x[k]);
    }
}

template <class CFG> inline wide_t neuron_cmp(wide_t a, wide_t theta) { return CFG::ge ? (a >= theta) : (a > theta); }

template <class CFG> inline wide_t neuron_reset(wide_t v, wide_t z, wide_t theta, wide_t v_reset) {
    if (CFG::mode == reset_value)
        return z ? v_reset : v;
    if (CFG::mode == reset_subtract)
        return saturate<CFG::state_bits>(v - z * theta);
    return v;
}

template <class CFG, class V_T, class I_T, class OUT_T>
void neuron_step(const wide_t drive[CFG::n], V_T v[CFG::n], I_T i_syn[CFG::n], OUT_T out[CFG::n],
                 const wide_t B[CFG::n_b], const wide_t C[CFG::n_c], const wide_t A[CFG::n_a], const wide_t G[CFG::n_g],
                 const wide_t theta[CFG::n_theta], const wide_t v_reset[CFG::n_reset]) {
    #pragma HLS PIPELINE II=CFG::reuse_factor
    #pragma HLS ALLOCATION operation instances=mul limit=CFG::multiplier_limit
NeuronLoop:
    for (int k = 0; k < CFG::n; k++) {
        #pragma HLS UNROLL
        const wide_t th = theta[at<CFG::n_theta>(k)];
        const wide_t vr = v_reset[at<CFG::n_reset>(k)];
        wide_t vk = wide(v[k]);
        wide_t z_prev = 0;
        if (CFG::spiking) {
            z_prev = neuron_cmp<CFG>(vk, th);
            if (CFG::timing == timing_delayed_pre_decay)
                vk = neuron_reset<CFG>(vk, z_prev, th, vr);
        }
        wide_t d = drive[k];
        if (CFG::cuba) {
            const wide_t ik = saturate<CFG::state_bits>(round_shift(A[at<CFG::n_a>(k)] * wide(i_syn[k]) + d, CFG::frac));
            i_syn[k] = I_T(ik);
            d = G[at<CFG::n_g>(k)] * ik;
        }
        wide_t u = saturate<CFG::state_bits>(round_shift(B[at<CFG::n_b>(k)] * vk + d, CFG::frac) + C[at<CFG::n_c>(k)]);
        if (!CFG::spiking) {
            v[k] = V_T(u);
            out[k] = OUT_T(u);
            continue;
        }
        if (CFG::timing == timing_delayed || CFG::timing == timing_snntorch_immediate)
            u = neuron_reset<CFG>(u, z_prev, th, vr);
        const wide_t z = neuron_cmp<CFG>(u, th);
        if (CFG::timing == timing_immediate)
            u = neuron_reset<CFG>(u, z, th, vr);
        else if (CFG::timing == timing_snntorch_immediate)
            u = saturate<CFG::state_bits>(u - (z - z_prev) * th);
        v[k] = V_T(u);
        out[k] = OUT_T(CFG::post ? z : z_prev);
    }
}

// Delay: y[t] = x[t - d] per element (zero before the first input), a ring buffer of L slots.
struct delay_config {
    static const int n = 1;
    static const int length = 1; // max delay + 1
    static const int n_delay = 1;
};

template <class CFG, class BUF_T>
void delay_step(const wide_t x[CFG::n], wide_t y[CFG::n], BUF_T buffer[CFG::length * CFG::n], int &slot, const int delay[CFG::n_delay]) {
    for (int k = 0; k < CFG::n; k++) {
        #pragma HLS UNROLL
        buffer[slot * CFG::n + k] = BUF_T(x[k]);
    }
    for (int k = 0; k < CFG::n; k++) {
        #pragma HLS UNROLL
        const int read = (slot - delay[at<CFG::n_delay>(k)] + CFG::length) % CFG::length;
        y[k] = wide(buffer[read * CFG::n + k]);
    }
    slot = (slot + 1) % CFG::length;
}

} // namespace talon

#endif
