"""What renderers share, re-exported from where it is defined once: the metrics table
(effprof.metrics: labels, units, `human`) and the series helpers (effprof.frames)."""

from __future__ import annotations

from effprof.frames import add_labels, fmt_value, is_missing, noisy_mask, ok_rows, swept_axis, varying_keys
from effprof.metrics import COMPARED, NOISY_MARK, human, is_noisy, label

__all__ = ["COMPARED", "NOISY_MARK", "add_labels", "fmt_value", "human", "is_missing", "is_noisy", "label", "noisy_mask", "ok_rows",
           "swept_axis", "varying_keys"]
