import pytest

from birdcall.errors import ParameterError
from birdcall.registry import Registry


def test_register_get_and_errors():
    reg = Registry("widget")

    @reg.register
    def alpha():
        return 1

    @reg.register(name="beta")
    def _b():
        return 2

    assert reg.get("alpha")() == 1 and reg.get("beta")() == 2
    assert reg.names() == ["alpha", "beta"] and "beta" in reg
    with pytest.raises(ParameterError, match="unknown widget 'gamma'; available: alpha, beta"):
        reg.get("gamma")
    with pytest.raises(ParameterError, match="registered twice"):
        reg.register(alpha)
