"""Contact-time slot evaluation: which hour-of-week would the model recommend per contact?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from salespilot.models.spec import ModelSpec
from salespilot.training.core import SlotFn

if TYPE_CHECKING:
    from salespilot.features.history import History


def make_slot_evaluator(spec: ModelSpec, truth: Path, history: History) -> SlotFn | None:
    """Filled in once the candidate-slot builder and the truth profiles exist."""
    return None
