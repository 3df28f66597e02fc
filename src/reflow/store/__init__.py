"""The durability layer (in progress): how results are kept outside the process.

So far: `reflow.store.results`, which turns results into bytes (JSON when a value round-trips,
else cloudpickle signed with HMAC-SHA256) and back, refusing any pickle it did not sign.
"""

from reflow.store.results import (
    Encoded,
    ResultCodec,
    UntrustedResultError,
    load_or_create_key,
    reflow_home,
)

__all__ = [
    "Encoded",
    "ResultCodec",
    "UntrustedResultError",
    "load_or_create_key",
    "reflow_home",
]
