"""Models in their own environments: the wire protocol, the server, and the backend contract.

``panbench serve`` serves any registered adapter; a model author who cannot install panbench's
dependencies imports :mod:`panbench.serve.server` and :mod:`panbench.serve.backend`, which need
only numpy, starlette and uvicorn. The client is the ``remote`` adapter
(:mod:`panbench.models.remote`). See docs/remote.md.
"""

from panbench.serve.backend import Backend, StateStore
from panbench.serve.wire import VERSION, WireError, decode, encode

__all__ = ["VERSION", "Backend", "StateStore", "WireError", "decode", "encode"]
