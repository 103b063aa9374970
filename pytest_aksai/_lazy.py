"""Lazy package attributes (PEP 562): a package exports names whose modules load on first use.

Loading the plugin happens in every pytest run of every project it is installed in, so the packages it
touches (`pytest_aksai`, `kube`, `sizing`) import their client and catalog code only when a name is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(namespace: dict[str, Any], where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `namespace` (the package's `globals()`).

    `where` maps a name to `module` or `module:attribute`; a module starting with `.` is relative to the
    package; `module:` (empty attribute) names the module itself. The value is cached in the namespace.
    """
    package = str(namespace["__name__"])

    def __getattr__(name: str) -> Any:
        target = where.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":") if ":" in target else (target, "", name)
        module = import_module(package + module_name if module_name.startswith(".") else module_name)
        value = getattr(module, attribute) if attribute else module
        namespace[name] = value
        return value

    return __getattr__
