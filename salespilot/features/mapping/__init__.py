"""Bring your own data: turn a raw CRM export (files or a database) into a contract folder.

``import_history(mapping, source, out_dir)`` applies a mapping file (see docs/import.md) and
validates the result with the loader's own rules, so an import and ``salespilot validate``
report problems the same way.
"""

from salespilot.features.mapping.importer import ImportResult, ImportValidationError, import_history
from salespilot.features.mapping.model import Mapping, MappingError, load_mapping, parse_mapping
from salespilot.features.mapping.sources import SourceError, open_source

__all__ = [
    "ImportResult",
    "ImportValidationError",
    "Mapping",
    "MappingError",
    "SourceError",
    "import_history",
    "load_mapping",
    "open_source",
    "parse_mapping",
]
