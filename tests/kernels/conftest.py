"""The Triton tests of this folder run under the interpreter on a machine with no GPU.

``TRITON_INTERPRET`` must be set before triton is imported (``triton.jit`` reads it when a
kernel is defined). Pytest imports this conftest while collecting the folder, before any of
its test modules, so the setting does not depend on which tests run first. A GPU run
(``make gpu-check``) exports ``TRITON_INTERPRET=0`` first, and that value is kept.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
