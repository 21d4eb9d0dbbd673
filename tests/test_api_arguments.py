"""The Python API and the pytest plugin check their arguments as the CLI checks its flags (issue 21):
a bad value is a ConfigError naming it, never a hang or a raw TypeError; numpy's integers are integers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import effprof
from effprof.config import ConfigError
from effprof.executors import make_executor
from effprof.executors.ray import check_address
from effprof.measure.harness import Options
from effprof.pytest_plugin import assert_scaling

CLAIM = {"mechanism": "linear_attention", "axis": "seq_len", "metric": "flops", "exponent": 1.0}


@pytest.mark.parametrize("max_time", [math.nan, 0, -1, math.inf, 601, "1"])
def test_assert_scaling_refuses_a_timing_budget_the_cli_refuses(max_time):
    """max_time=nan or 0 never returned: the timing loop waited for a budget it could not reach."""
    with pytest.raises(ConfigError, match="max_time="):
        assert_scaling(**{**CLAIM, "metric": "time"}, values=[32, 64, 128], max_time=max_time, d_model=16)


@pytest.mark.parametrize("values", [None, "256,512", 256, [32, 64, None], [32, 64, math.nan], [True, 2, 3]])
def test_assert_scaling_refuses_bad_values_in_one_message(values):
    with pytest.raises(ConfigError, match="values must be a list of positive numbers"):
        assert_scaling(**CLAIM, values=values, d_model=16)


def test_assert_scaling_refuses_params_that_are_not_a_table():
    with pytest.raises(ConfigError, match="params must be a table of config keys"):
        assert_scaling(**CLAIM, values=[32, 64, 128], params=["d_model", 16])
    with pytest.raises(ConfigError, match="params must be a table of config keys"):
        assert_scaling(**CLAIM, values=[32, 64, 128], params=["d_model", 16], impl="chunked")


def test_assert_scaling_takes_numpy_integers():
    fit = assert_scaling(**CLAIM, values=np.array([32, 64, 128, 256]), tol=0.1, d_model=np.int64(16), impl="chunked",
                         chunk_size=np.int32(8))
    assert fit["exponent"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("field, value", [("max_time_s", math.nan), ("max_time_s", 0.0), ("threads", -1), ("threads", 1.5),
                                          ("threads", 5000), ("seed", -3), ("breakdown_depth", 0), ("timing", "yes")])
def test_options_are_checked_when_made(field, value):
    with pytest.raises(ConfigError, match=field.removesuffix("_s").replace("breakdown_", "")):
        Options(**{field: value})


def test_options_take_numpy_integers():
    assert Options(threads=np.int64(2), seed=np.int64(1)).threads == 2


@pytest.mark.parametrize("call, fragment", [
    (lambda: effprof.sweep(None, vary={"seq_len": [16]}), "names must be a name or a list of names"),
    (lambda: effprof.sweep(["softmax_attention"], vary={"seq_len": "16,32"}), "vary 'seq_len' must be a list of values"),
    (lambda: effprof.sweep(["softmax_attention"], vary=[16, 32]), "vary must be a dict"),
    (lambda: effprof.sweep(["softmax_attention"], vary={"colour": [1]}), "vary key 'colour' is not a config key"),
    (lambda: effprof.sweep(["softmax_attention"], vary={"seq_len": [16]}, mode=None), "mode must be a name"),
    (lambda: effprof.sweep(["softmax_attention"], vary={"seq_len": [16]}, executor="ray", address="ray://h:99999999999999999999"),
     "is not a Ray address"),
    (lambda: effprof.profile("softmax_attention", seq_len=16, options=Options(max_time_s=math.nan)), "max_time=nan"),
    (lambda: effprof.fit(None), "expected a DataFrame of records"),
    (lambda: effprof.fit([{"mechanism": "x", "mode": "forward", "seq_len": -4}]), "record 0: seq_len is -4"),
    (lambda: effprof.report([], None), "path must be a file name"),
])
def test_the_python_api_names_the_bad_argument(call, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        call()


def test_the_python_api_takes_numpy_sizes():
    quick = Options(max_time_s=0.01, fvcore=False, roofline=False, memory=False)
    frame = effprof.sweep("softmax_attention", vary={"seq_len": np.array([16, 32])}, options=quick, d_model=np.int64(16))
    assert list(frame.seq_len) == [16, 32] and set(frame.status) == {"ok"}


@pytest.mark.parametrize("address, fragment", [
    ("ray://localhost:99999999999999999999", "is not a Ray address"), ("localhost:65536", "port 65536 is not a port"),
    ("ray://:10001", "is not a Ray address"), ("ray://h\u0660st:1", "is not a Ray address"),
])
def test_ray_addresses_are_checked_without_ray(address, fragment):
    """A 20-digit port was an OverflowError traceback from the socket; checked before Ray is even imported."""
    with pytest.raises(ConfigError, match=fragment):
        check_address(address)
    with pytest.raises(ConfigError, match=fragment):
        make_executor("ray", address)


@pytest.mark.parametrize("kwargs, fragment", [({"count_only": "yes"}, "count_only='yes' is not True or False"),
                                              ({"max_time": 601}, "max_time=601"), ({"threads": -1}, "threads=-1"),
                                              ({"depth": 0}, "depth=0")])
def test_the_python_api_checks_its_options_where_every_options_is_checked(kwargs, fragment):
    """effprof.profile's keywords go through Options' one check (runner.options_from kept a copy of its limits)."""
    with pytest.raises(ConfigError, match=fragment):
        effprof.profile("softmax_attention", seq_len=16, **kwargs)
