"""Stage 2 of the CPU backend: the number formats.

The integer arithmetic and formats of the fixed-point datapath (:mod:`.fixed_point`), their
calibration from an fp32 run (:mod:`.calibration`), the weight quantizations reused across calls
(:mod:`.weight_cache`), and the exactness of float64 sums (:mod:`.exact_sums`) that
lets the fp32 kernels take faster paths with the same bits. The FPGA backend uses the same formats.
"""
