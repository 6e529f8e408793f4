"""Importing LightGBM with or without its scikit-learn face.

``import lightgbm`` imports scikit-learn (about 6 s of a cold start) whenever it is installed,
for the ``LGBMClassifier`` wrappers; a :class:`lightgbm.Booster` needs none of it. Serving
imports LightGBM with :func:`booster_only`, which hides scikit-learn for that one import;
code that needs the wrappers (``lightgbm.dask``) asks :func:`with_scikit_learn`, which
re-imports LightGBM's wrapper modules when the first import went without them.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def booster_only() -> ModuleType:
    """LightGBM, imported without scikit-learn unless one of them is imported already."""
    if "lightgbm" not in sys.modules and "sklearn" not in sys.modules:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` fails
        try:
            import lightgbm
        finally:
            del sys.modules["sklearn"]
    import lightgbm

    return lightgbm


def with_scikit_learn() -> ModuleType:
    """LightGBM with its scikit-learn (and Dask) wrappers, whichever way it was imported first."""
    import lightgbm
    import lightgbm.compat

    if not lightgbm.compat.SKLEARN_INSTALLED:
        importlib.reload(lightgbm.compat)
        for name in ("lightgbm.sklearn", "lightgbm.dask"):
            if name in sys.modules:
                importlib.reload(sys.modules[name])
        importlib.reload(lightgbm)
    return lightgbm
