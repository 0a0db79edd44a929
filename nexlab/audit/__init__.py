"""The auditor: ``nexlab.audit(path)`` -> ``Audit``.

``nexlab.audit`` is both this subpackage and the function: Python binds a
subpackage to its parent's attribute once it is imported, which would shadow a
plain function of the same name. So the package itself is callable and
forwards to ``nexlab.audit.audit.audit``; all of these work::

    import nexlab; nexlab.audit("rootfs.ext4")
    from nexlab import audit; audit("rootfs.ext4")
    from nexlab.audit import audit, Audit

``audit`` and ``Audit`` are imported on first use: the build's service check
reads the rules (``nexlab.audit.findings``) and must not pay for the whole
auditor (its budget, packages and report models) on every build. They are
properties of the package's class, so the import system binding the submodule
``nexlab.audit.audit`` to the package cannot shadow the function either.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit, audit

__all__ = ["Audit", "audit"]


def _auditor() -> Any:
    return importlib.import_module("nexlab.audit.audit")


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Audit:
        return _auditor().audit(*args, **kwargs)

    @property
    def audit(self) -> Any:
        return _auditor().audit

    @audit.setter
    def audit(self, module: types.ModuleType) -> None:
        pass  # the import system binding the submodule: the name stays the function's

    @property
    def Audit(self) -> Any:
        return _auditor().Audit


sys.modules[__name__].__class__ = _CallablePackage
