"""The ssm family: state-space sequence mixers with a state of constant size.

- s4:     S4 / S4D, x'(t) = Ax(t) + Bu(t) per channel from HiPPO-LegS; recurrent scan or FFT convolution
- mamba:  the selective SSM block (input-dependent Δ, B, C); token loop or chunked parallel scan
- mamba2: SSD, a scalar decay per head; recurrent, quadratic dual form, or chunked block decomposition

Files: hippo.py (HiPPO-LegS and its DPLR form), s4_kernel.py (S4's recurrence step, convolution kernel,
prefill state), selective_scan.py (Mamba's scans), ssd.py (Mamba-2's forms), conv.py (the causal depthwise
conv both Mambas share); each mechanism's module holds the layer and its spec, *_cost.py its analytic FLOPs.
"""

from effprof.mechanisms.ssm import mamba, mamba2, s4  # noqa: F401
