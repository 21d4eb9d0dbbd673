"""The fast forms of the fitting and reading code equal their obvious forms bit for bit (issue 26: the
25k-series fit got faster without changing a figure). No test here times anything."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from effprof.analyse.fit import _sum_sizes, _two_term, fit_frame
from effprof.analyse.session import mark_noisy_fits
from effprof.store import records


def _two_term_reference(ls, ly, w, p, q):
    """The two-term least squares on the whole (..., P, k) array: the form _two_term must equal."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        u = np.exp(p[..., :, None] * ls[..., None, :] - ly[..., None, :])
        v = np.exp(q * ls - ly)[..., None, :]
        wk = w[..., None, :]
        uu, vv, uv = (wk * u * u).sum(-1), (wk * v * v).sum(-1), (wk * u * v).sum(-1)
        uy, vy = (wk * u).sum(-1), (wk * v).sum(-1)
        vv, uv, vy = np.broadcast_arrays(vv, uv, vy)
        vv, vy = vv * np.ones_like(uu), vy * np.ones_like(uu)
        n = w.sum(-1)[..., None]
        det = uu * vv - uv * uv
        both_ok = det > 1e-10 * uu * vv
        safe_det = np.where(both_ok, det, 1.0)
        a = (uy * vv - vy * uv) / safe_det
        b = (vy * uu - uy * uv) / safe_det
        both_ok &= (a >= 0) & (b >= 0)
        only_a = np.maximum(uy, 0) / np.where(uu > 0, uu, 1.0)
        only_b = np.maximum(vy, 0) / np.where(vv > 0, vv, 1.0)
        loss_a, loss_b = n - only_a * uy, n - only_b * vy
        loss_both = np.where(both_ok, n - (a * uy + b * vy), np.inf)
        best = np.argmin(np.stack([loss_both, loss_a, loss_b]), axis=0)
        loss = np.choose(best, [loss_both, loss_a, loss_b])
        a_out = np.choose(best, [np.where(both_ok, a, 0.0), only_a, np.zeros_like(a)])
        b_out = np.choose(best, [np.where(both_ok, b, 0.0), np.zeros_like(b), only_b])
        loss = np.where(np.isnan(loss), np.inf, loss)
    return loss, a_out, b_out


@pytest.mark.parametrize("k", [3, 4, 7, 8, 9, 17, 130])
def test_sum_sizes_is_numpys_sum(k):
    x = np.random.default_rng(k).random((50, 6, k)) * 10.0 ** np.random.default_rng(k + 1).integers(-3, 4, (50, 6, k))
    assert np.array_equal(_sum_sizes([x[..., j] for j in range(k)]), x.sum(-1))


@pytest.mark.parametrize("k", [3, 4, 7, 8, 9])
@pytest.mark.parametrize("q", [0.0, 1.0])
def test_two_term_equals_its_reference_bit_for_bit(k, q):
    rng = np.random.default_rng(k)
    s = 3000  # more rows than one block, so the blocks are stitched back together too
    x = np.sort(rng.uniform(1, 1e4, (s, k)), -1)
    ls = np.log(x / x[:, -1:])
    ly = rng.normal(0, 1, (s, k)) * rng.choice([0.1, 5.0, 40.0], (s, 1))  # 40: values that overflow exp
    ly -= ly.max(-1, keepdims=True)
    ly[rng.random((s, k)) < 0.02] = np.nan
    for w in (rng.uniform(0.9, 1.1, (s, k)), np.ones((s, k))):  # unit weights: the searches' fast path skips them
        for p in (rng.uniform(0, 5, (s, 51)), rng.uniform(0, 5, (s, 1))):
            for fast, slow in zip(_two_term(ls, ly, w, p, q), _two_term_reference(ls, ly, w, p, q), strict=True):
                assert fast.shape == slow.shape and np.array_equal(fast, slow, equal_nan=True)
            loss = _two_term(ls, ly, w, p, q, loss_only=True)
            assert loss[1] is None and loss[2] is None and np.array_equal(loss[0], _two_term_reference(ls, ly, w, p, q)[0])
    # the influence's layout: (S, perturbations, k) data against (S, 1, 3) exponents
    lys = ly[:, None, :] + rng.normal(0, 1e-3, (1, 5, k))
    wide = np.broadcast_to(ls[:, None, :], lys.shape)
    ws = np.broadcast_to(rng.uniform(0.99, 1.01, (5, k))[None], lys.shape)
    p = rng.uniform(0, 5, s)[:, None, None] + np.array([-1e-3, 0.0, 1e-3])
    for fast, slow in zip(_two_term(wide, lys, ws, p, q), _two_term_reference(wide, lys, ws, p, q), strict=True):
        assert np.array_equal(fast, slow, equal_nan=True)


def test_two_term_reference_is_not_trivially_equal():
    """The equality above can fail: a changed weight changes the losses."""
    rng = np.random.default_rng(0)
    ls, ly = np.log(np.array([[0.125, 0.25, 0.5, 1.0]])), np.log(rng.uniform(0.1, 1, (1, 4)))
    p = np.array([[1.5]])
    assert not np.array_equal(_two_term(ls, ly, np.ones((1, 4)), p, 0.0)[0], _two_term_reference(ls, ly, np.full((1, 4), 2.0), p, 0.0)[0])


@pytest.mark.parametrize("values, valid", [
    ([0.1, 0.2], True), ([], True), ([-0.0, 3], True), ([1e308, 1e308], True),  # the sum overflows: each is still finite
    ([0.1, math.nan], False), ([0.1, math.inf], False), ([0.1, -1e-9], False), ([True, 0.5], False), ([0.5, "1"], False),
    ([10**400], False), ("0.1", False), ({"a": 1.0}, False),
])
def test_sample_lists_are_checked_value_by_value(values, valid):
    record = {"mechanism": "m", "mode": "forward", "time_samples_s": values}
    reason = records.validate_record(record)
    assert (reason is None) == valid, reason
    if not valid:
        assert reason.startswith("time_samples_s is ")


@pytest.mark.parametrize("field, value, words", [
    ("time_s", -0.5, "cannot be negative"), ("time_s", math.nan, "not a number"), ("time_s", math.inf, "not a number"),
    ("time_s", True, "not a number"), ("peak_bytes", -3, "cannot be negative"), ("seq_len", 0, "positive integer"),
    ("seq_len", -4, "positive integer"), ("seq_len", 2.5, "whole number"), ("seq_len", True, "whole number"),
])
def test_fast_paths_still_refuse_bad_figures(field, value, words):
    assert records.validate_record({"mechanism": "m", "mode": "forward", field: 1.0 if field != "seq_len" else 64}) is None
    reason = records.validate_record({"mechanism": "m", "mode": "forward", field: value})
    assert reason is not None and field in reason and words in reason, reason


def test_noisy_points_are_counted_only_in_their_own_series():
    rows = []
    for impl in ("a", "b"):
        for n, iqr in ((64, 0.0), (128, 0.5), (256, 0.0)):  # one noisy point per series, in impl=a only
            rows.append({"mechanism": "m", "mode": "forward", "status": "ok", "impl": impl, "seq_len": n,
                         "time_s": float(n), "time_iqr_s": iqr * n if impl == "a" else 0.0, "flops_counted": float(n * n)})
    frame = pd.DataFrame(rows)
    fits = mark_noisy_fits(fit_frame(frame), frame)
    counts = {(r["variant"], r["metric"]): r["noisy_points"] for r in fits.to_dict("records")}
    assert counts == {("impl=a", "time"): 1, ("impl=b", "time"): 0, ("impl=a", "flops"): 0, ("impl=b", "flops"): 0}
    assert fits["uncertain"].tolist() == [n > 0 for n in fits["noisy_points"]]


def test_an_integer_too_large_for_a_float_is_refused_not_a_crash(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text('{"mechanism": "m", "mode": "forward", "seq_len": 1' + "0" * 400 + '}\n'
                    '{"mechanism": "m", "mode": "forward", "peak_bytes": 1' + "0" * 400 + '}\n'
                    '{"mechanism": "m", "mode": "forward", "seq_len": 64}\n')
    with pytest.warns(UserWarning) as caught:
        kept = records.read(path)
    assert [r["seq_len"] for r in kept] == [64]
    assert "seq_len is" in str(caught[0].message) and "peak_bytes is" in str(caught[1].message)


@pytest.mark.parametrize("line", [
    '{"mechanism": "m", "mode": "forward", "mode": "train"}',  # the plain repeat
    '{"mechanism": "m", "mode" : "forward", "mode": "train"}',  # whitespace before a colon: not a `":` mark
    '{"mechanism": "m", "mode": "forward", "ops": {"mm": {"flops": 1, "flops": 2}}}',  # in a nested object
    '{"mechanism": "m", "mode": "forward", "claims": [{"a": 1, "a": 2}]}',  # in an object inside a list
    '{"mechanism": "m", "error": "x\\": y", "mode": "forward", "mode": "train"}',  # a string holding a quote-colon mark
    '{"mechanism": "m", "timestamp": "05:13:17", "mode": "a", "mode": "b"}',  # colons in a string
])
def test_the_fast_parse_still_refuses_every_repeated_key(line, tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        records._loads_record(line)
    path = tmp_path / "r.jsonl"
    path.write_text(line + "\n" + '{"mechanism": "m", "mode": "forward"}\n')
    with pytest.warns(UserWarning, match="appears twice"):
        assert len(records.read(path)) == 1


@pytest.mark.parametrize("line", [
    '{"mechanism": "m", "mode": "forward", "ops": {"mm": {"flops": 1}}, "error": "a: b \\": c"}',
    '{"mechanism" : "m", "mode":"forward", "timestamp": "2026-12-07T05:13:17"}',
    '{"mechanism": "m", "mode": "forward", "claims": [["flops", "seq_len", 2.0, 0.0]], "x": [[{"y": {"z": 1}}]]}',
])
def test_the_fast_parse_keeps_records_without_repeats(line):
    import json

    assert records._loads_record(line) == json.loads(line)


@pytest.mark.parametrize("claim, valid", [
    (["flops", "seq_len", 2.0, 0.0], True), (["flops", "seq_len", 2, 1], True), (["flops", "seq_len", 2.0], True),
    (["flops", "seq_len", math.nan, 0.0], False), (["flops", "seq_len", 2.0, math.inf], False),
    (["flops", "seq_len", 1e308, 1e308], True),  # the fast path's sum overflows; each number is finite
    (["flops", "seq_len", 2.0, True], False), ([1, "seq_len", 2.0, 0.0], False), (["flops", "seq_len", "2", 0.0], False),
])
def test_claims_fast_path_still_refuses_bad_claims(claim, valid):
    reason = records.validate_record({"mechanism": "m", "mode": "forward", "claims": [claim]})
    assert (reason is None) == valid, reason
