"""One module per family; importing this package registers them all."""

from effprof.mechanisms import attention, linear_attention  # noqa: F401
from effprof.mechanisms import moe  # noqa: F401
from effprof.mechanisms import sparse  # noqa: F401
from effprof.mechanisms import ssm  # noqa: F401
from effprof.mechanisms import diffusion  # noqa: F401
from effprof.mechanisms import hybrid  # noqa: F401
