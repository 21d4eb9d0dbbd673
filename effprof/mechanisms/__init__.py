"""One module per family; importing this package registers them all."""

from effprof.mechanisms import (  # noqa: F401
    attention,
    diffusion,  # noqa: F401
    hybrid,  # noqa: F401
    linear_attention,
    moe,  # noqa: F401
    sparse,  # noqa: F401
    ssm,  # noqa: F401
)
