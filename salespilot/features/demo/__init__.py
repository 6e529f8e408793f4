"""Demo CRM generator with ground truth (see README.md in this folder for the story).

``generate_history(out_dir, reps=20, months=12, seed=0, end=None, fmt="csv", knobs=None)``
writes a contract folder the loader reads like any customer export, plus ``truth/`` with the
probability behind every label; :mod:`salespilot.features.demo.truth` reads it back.
"""

from salespilot.features.demo.generator import default_end, generate_history
from salespilot.features.demo.knobs import DemoKnobs

__all__ = ["DemoKnobs", "default_end", "generate_history"]
