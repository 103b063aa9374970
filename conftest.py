"""Root conftest: the plugin's own tests drive pytest in pytest with `pytester`."""

# In-process pytester runs drop the modules they imported, and the plugin imports its client and simulated-
# cluster code lazily; some of it does not survive a second import in one process (cryptography's Rust
# bindings: "curve must be an EllipticCurve instance"; numpy, under the report's matplotlib: "cannot load
# module more than once per process"; the sim's module-level caches), so the outer process imports it
# once for all.
import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import matplotlib.backends.backend_svg
import matplotlib.figure  # noqa: F401

import pytest_aksai.kube._connect
import pytest_aksai.sim._runtime  # noqa: F401

pytest_plugins = ["pytester"]
