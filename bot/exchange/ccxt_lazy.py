"""ccxt's two packages with their ``__init__`` deferred.

``import ccxt.async_support`` runs the ``__init__`` of ``ccxt`` and of
``ccxt.async_support``, which import every exchange ccxt has, sync and async (about 110
each): about 0.6 s of CPU, half of a daemon's start, where an account uses one of them.
Once :func:`install` has run (``bot.exchange`` runs it when imported), importing either
package makes a module whose names resolve on first use: an exchange's class from its own
module; the errors, the precision constants and ``Exchange`` from ``ccxt.base`` (where the
``__init__`` takes them from); anything else by running the package's own ``__init__``
then, so every name is what ccxt defines. A process that imported ccxt before keeps it
as it is; nothing is imported before a ccxt package is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

#: Per deferred package, the modules its ``__init__`` takes its own names from.
PACKAGES = {
    "ccxt": ("ccxt.base.errors", "ccxt.base.decimal_to_precision", "ccxt.base.exchange"),
    "ccxt.async_support": (
        "ccxt.base.errors",
        "ccxt.base.decimal_to_precision",
        "ccxt.async_support.base.exchange",
    ),
}
_INIT_DUNDERS = frozenset({"__version__", "__all__"})  # set by the __init__ itself
_REAL = "_hedgebot_real_spec"  # the package's own spec, for its __init__ when needed


class _Deferred(types.ModuleType):
    """A ccxt package whose names are found on first use (module ``__getattr__``)."""

    def __getattr__(self, name: str) -> Any:
        if (name.startswith("__") and name not in _INIT_DUNDERS) or name == _REAL:
            raise AttributeError(name)
        value = _resolve(self, name)
        setattr(self, name, value)
        return value


def _resolve(package: _Deferred, name: str) -> Any:
    own = package.__name__
    if name.islower() and name.isidentifier() and _has_module(f"{own}.{name}"):
        module = importlib.import_module(f"{own}.{name}")
        return getattr(module, name, module)  # an exchange's module holds its class
    for source in PACKAGES[own]:
        module = importlib.import_module(source)
        if hasattr(module, name):
            return getattr(module, name)
    real = package.__dict__.pop(_REAL, None)
    if real is not None and real.loader is not None:
        real.loader.exec_module(package)  # the whole __init__, once
    try:
        return package.__dict__[name]
    except KeyError:
        raise AttributeError(f"module {own!r} has no attribute {name!r}") from None


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _Loader(importlib.abc.Loader):
    def __init__(self, real: importlib.machinery.ModuleSpec) -> None:
        self._real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _Deferred(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__[_REAL] = self._real
        module.__file__ = self._real.origin


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the deferred packages; every other import is left to the other finders."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PACKAGES:
            return None
        real = _real_spec(fullname, path)
        if real is None or real.submodule_search_locations is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname, _Loader(real), origin=real.origin, is_package=True
        )
        if spec is not None:
            spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec


def _real_spec(fullname: str, path: Sequence[str] | None) -> importlib.machinery.ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if isinstance(finder, _Finder) or find is None:
            continue
        spec = find(fullname, path)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def install() -> None:
    """Defer the ccxt packages' ``__init__`` in this process (once; harmless after ccxt
    was imported: the modules already there are used)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def exchange_class(exchange_id: str) -> type | None:
    """ccxt's async class of the exchange ``exchange_id`` (its module alone is imported);
    None when ccxt has no such exchange."""
    import ccxt.async_support as ccxt_async

    if not (exchange_id.islower() and exchange_id.isidentifier()):
        return None
    found = getattr(ccxt_async, exchange_id, None)
    return found if isinstance(found, type) else None
