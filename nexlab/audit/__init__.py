"""The auditor: ``nexlab.audit(path)`` -> ``Audit``.

``nexlab.audit`` is both this subpackage and the function: Python binds a
subpackage to its parent's attribute once it is imported, which would shadow a
plain function of the same name. So the package itself is callable and
forwards to ``nexlab.audit.audit.audit``; all of these work::

    import nexlab; nexlab.audit("rootfs.ext4")
    from nexlab import audit; audit("rootfs.ext4")
    from nexlab.audit import audit, Audit
"""

from __future__ import annotations

import sys
import types
from typing import Any

from nexlab.audit.audit import Audit, audit

__all__ = ["Audit", "audit"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Audit:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
