"""Model specs: what each model is (entity, label, horizon, features, params, promotion rule).

``SPECS`` maps a model name to its :class:`~salespilot.models.spec.ModelSpec`; use
:func:`get_spec` for a clear error on an unknown name.
"""

from __future__ import annotations

from salespilot.features.names import unknown_name
from salespilot.models.churn_risk import SPEC as CHURN_RISK
from salespilot.models.contact_time import SPEC as CONTACT_TIME
from salespilot.models.spec import BaselineRule, ModelSpec, SlotEvaluation
from salespilot.models.win_probability import SPEC as WIN_PROBABILITY

SPECS: dict[str, ModelSpec] = {s.name: s for s in (WIN_PROBABILITY, CHURN_RISK, CONTACT_TIME)}


def get_spec(name: str) -> ModelSpec:
    """The spec called ``name``; a ``KeyError`` listing the known models otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(unknown_name("model", name, SPECS)) from None


__all__ = ["SPECS", "BaselineRule", "ModelSpec", "SlotEvaluation", "get_spec"]
