"""A mechanism's spec is what it declares, frozen: nothing changes it once registered (issue 22).

What the tests and measurement use of it are their own frozen objects (TestHooks, MeasureHints), given where
the spec is registered; a module factory's later claims and its probe's finding make a new spec.
"""

from __future__ import annotations

import dataclasses

import pytest

from effprof.modules import module_spec
from effprof.registry import MeasureHints, MechanismSpec, Paper, TestHooks, get_spec, list_mechanisms, register, unregister


@pytest.mark.parametrize("field", ["claims", "causal", "builder", "defaults", "tests", "measure"])
def test_assigning_a_field_of_a_registered_spec_raises(field):
    spec = get_spec("mamba")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(spec, field, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.tests.overrides = {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.measure.loop_impls = ()


def test_test_hooks_and_measure_hints_are_their_own_objects():
    spec = get_spec("mamba")
    assert isinstance(spec.tests, TestHooks) and spec.tests.overrides == {"chunk_size": 5}
    assert isinstance(spec.measure, MeasureHints) and "sequential" in spec.measure.loop_impls
    assert not hasattr(spec, "test_overrides") and not hasattr(spec, "loop_impls")


def test_register_makes_the_registered_spec_and_leaves_the_given_one_as_it_was():
    declared = MechanismSpec("frozen_probe_mech", "test", "", Paper("t", 2020, "0"), False, {}, cost=None,
                             tests=TestHooks({"seq_len": 8}))
    try:
        builder = register(declared)(lambda config: None)
        registered = get_spec("frozen_probe_mech")
        assert declared.builder is None and registered.builder is builder and builder.spec is registered
        assert registered.tests == TestHooks({"seq_len": 8})
    finally:
        unregister("frozen_probe_mech")


def test_a_factory_targets_later_claims_register_a_new_spec():
    from effprof.registry import Claim

    target = "tests.plugins.factories:mlp"
    try:
        first = module_spec(target, (), {"d_model": 16})
        with pytest.raises(dataclasses.FrozenInstanceError):
            first.decodes = True
        claim = Claim("flops", "seq_len", 1.0, "forward")
        grown = module_spec(target, (claim,))
        assert claim in grown.claims and claim not in first.claims  # the first spec is as it was
        assert get_spec(target) is grown and module_spec(target, (claim,)) is grown  # nothing new: the same spec
    finally:
        if target in list_mechanisms():
            unregister(target)
