"""SalesPilot: ranked follow-up lists, fair targets and tracked models from a CRM history."""

import sys

# SalesPilot is an application that imports mlflow, pandas, scikit-learn and prefect on most
# commands: compiled from source they cost several times their cached import. Where
# PYTHONDONTWRITEBYTECODE is set (many container images set it) nothing is ever cached, so the
# application caches its compiled modules as Python does by default. The other way, an install
# that compiles everything (``uv``'s compile-bytecode), makes every ``uv run`` re-check the whole
# environment (1-3 s a command).
sys.dont_write_bytecode = False
