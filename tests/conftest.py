import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _registry_as_it_was():
    """Each test sees the registry as effprof starts it: mechanisms, module targets and plugins a test registers (a
    CLI call in this process, a --module probe, a --claim added to a module's spec) are gone after it, as they would
    be after a command's process exits."""
    from effprof import plugins, registry

    registry.list_mechanisms()  # the built-in families, registered once per process
    before, loaded = dict(registry._REGISTRY), dict(plugins._LOADED)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
