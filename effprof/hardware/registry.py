"""Named hardware: peak FLOP/s per dtype and memory bandwidth from the vendors' datasheets, each figure with its source.

Dense figures throughout. NVIDIA's Hopper, Ada and Ampere datasheets print the tensor-core figures "with
sparsity" (2:4 structured sparsity, marked with an asterisk); the dense figure is half of it, and that is what
is entered here (the sparse figure is kept beside it, named as such). Bandwidth in bytes/s as the datasheets
give it (decimal: 3.35 TB/s = 3.35e12 B/s). A figure a datasheet does not give is absent, never guessed: the
A100 has no FP8. Where a figure was entered from memory of the datasheet rather than checked against it today,
the entry says so in `caveat`.

Which figure a projection uses (effprof.hardware.project): the record's dtype picks the compute peak
(float32 -> fp32, the CUDA cores' rate, as PyTorch runs float32 matmuls unless TF32 is allowed;
bfloat16 -> bf16; float16 -> fp16); memory traffic runs at the bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
RECORD_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # a record's dtype -> the peak it runs at

T = 1e12


@dataclass(frozen=True)
class Hardware:
    """One device: dense peak FLOP/s per dtype, memory bandwidth (bytes/s), and where each figure comes from."""

    name: str  # what --hardware takes: h100-sxm
    title: str  # NVIDIA H100 SXM5 80 GB
    bandwidth: float  # bytes/s
    flops: dict[str, float]  # dtype (DTYPES) -> dense FLOP/s
    sources: dict[str, str]  # "bandwidth" and each dtype -> the datasheet (name, URL as text)
    sparse_flops: dict[str, float] = field(default_factory=dict)  # dtype -> FLOP/s with 2:4 sparsity, as printed
    caveat: str = ""
    memory_bytes: float | None = None

    def source_of(self, figure: str) -> str:
        return self.sources.get(figure) or self.sources.get("all", "")


_H100 = ("NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100/, 'H100 datasheet' PDF), "
         "table 'Technical Specifications'")
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200/), table 'Technical Specifications'"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100/), table 'NVIDIA A100 Tensor Core GPU Specifications'"
_L4 = "NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4/), table 'Specifications'"
_L40S = "NVIDIA L40S GPU datasheet (nvidia.com/en-us/data-center/l40s/), table 'Specifications'"
_ADA = ("NVIDIA Ada GPU Architecture whitepaper (images.nvidia.com/aem-dam/Solutions/geforce/ada/"
        "nvidia-ada-gpu-architecture.pdf), Appendix A, GeForce RTX 4090 column")
_MI300X = "AMD Instinct MI300X accelerator datasheet (amd.com/en/products/accelerators/instinct/mi300/mi300x.html)"
_DENSE = " (dense: half the datasheet's figure with sparsity)"


def _nvidia(name: str, title: str, source: str, bandwidth: float, fp32: float, sparse: dict[str, float], memory: float,
            caveat: str = "") -> Hardware:
    """An NVIDIA entry: fp32 as printed (no sparsity), tensor-core figures printed with sparsity, halved for dense."""
    return Hardware(name=name, title=title, bandwidth=bandwidth, flops={"fp32": fp32, **{k: v / 2 for k, v in sparse.items()}},
                    sparse_flops=dict(sparse), memory_bytes=memory, caveat=caveat,
                    sources={"bandwidth": source, "fp32": source, **{k: source + _DENSE for k in sparse}})


BUILTIN: dict[str, Hardware] = {h.name: h for h in (
    _nvidia("h100-sxm", "NVIDIA H100 SXM5 80 GB", _H100, 3.35e12, 67 * T,
            {"tf32": 989 * T, "bf16": 1979 * T, "fp16": 1979 * T, "fp8": 3958 * T}, 80e9),
    _nvidia("h100-pcie", "NVIDIA H100 PCIe 80 GB", _H100, 2.0e12, 51 * T,
            {"tf32": 756 * T, "bf16": 1513 * T, "fp16": 1513 * T, "fp8": 3026 * T}, 80e9),
    _nvidia("h200", "NVIDIA H200 SXM 141 GB", _H200, 4.8e12, 67 * T,
            {"tf32": 989 * T, "bf16": 1979 * T, "fp16": 1979 * T, "fp8": 3958 * T}, 141e9),
    _nvidia("a100-40gb", "NVIDIA A100 SXM4 40 GB", _A100, 1.555e12, 19.5 * T,
            {"tf32": 312 * T, "bf16": 624 * T, "fp16": 624 * T}, 40e9),
    _nvidia("a100-80gb", "NVIDIA A100 SXM4 80 GB", _A100, 2.039e12, 19.5 * T,
            {"tf32": 312 * T, "bf16": 624 * T, "fp16": 624 * T}, 80e9),
    _nvidia("l4", "NVIDIA L4 24 GB", _L4, 300e9, 30.3 * T,
            {"tf32": 120 * T, "bf16": 242 * T, "fp16": 242 * T, "fp8": 485 * T}, 24e9),
    _nvidia("l40s", "NVIDIA L40S 48 GB", _L40S, 864e9, 91.6 * T,
            {"tf32": 366 * T, "bf16": 733 * T, "fp16": 733 * T, "fp8": 1466 * T}, 48e9),
    _nvidia("rtx-4090", "NVIDIA GeForce RTX 4090 24 GB", _ADA, 1008e9, 82.6 * T,
            {"tf32": 165.2 * T, "bf16": 330.4 * T, "fp16": 330.4 * T, "fp8": 660.6 * T}, 24e9,
            caveat="tensor-core figures with FP32 accumulate (the GeForce card runs FP16-accumulate at twice the rate); "
                   "entered from the whitepaper's appendix table as remembered, not re-checked against it here"),
    Hardware(name="mi300x", title="AMD Instinct MI300X 192 GB", bandwidth=5.3e12, memory_bytes=192e9,
             flops={"fp32": 163.4 * T, "tf32": 653.7 * T, "bf16": 1307.4 * T, "fp16": 1307.4 * T, "fp8": 2614.9 * T},
             sparse_flops={"tf32": 1307.4 * T, "bf16": 2614.9 * T, "fp16": 2614.9 * T, "fp8": 5229.8 * T},
             sources={"all": _MI300X + ", peak matrix figures (AMD prints dense and sparse separately); fp32 is the matrix "
                      "rate (the vector rate is 81.7 TFLOP/s)"}),
)}


def describe(hardware: Hardware) -> list[str]:
    """Every figure of an entry with its source, one line each (the report's projection note, `effprof hardware`)."""
    lines = [f"{hardware.title} ({hardware.name}): memory bandwidth {hardware.bandwidth / 1e12:.4g} TB/s — {hardware.source_of('bandwidth')}"]
    for dtype in DTYPES:
        if dtype in hardware.flops:
            sparse = f"; with sparsity {hardware.sparse_flops[dtype] / T:.4g}" if dtype in hardware.sparse_flops else ""
            lines.append(f"  {dtype}: {hardware.flops[dtype] / T:.4g} TFLOP/s dense{sparse} — {hardware.source_of(dtype)}")
    if hardware.caveat:
        lines.append(f"  caveat: {hardware.caveat}")
    return lines
