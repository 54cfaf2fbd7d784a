"""Pure, synchronous, streaming writers for the ten export formats (see README.md beside this file).

>>> stats = write_export("csv", lambda: iter(items), meta, open("out.csv", "wb"))
"""

from ._filename import safe_filename
from ._model import (
    ExportItem,
    ExportMeta,
    ExportOptions,
    FormatSpec,
    ItemsFactory,
    SchemaDriftError,
    WriteStats,
)
from ._provenance import wanted as provenance_wanted
from ._registry import FORMATS, write_export

__all__ = [
    "FORMATS",
    "ExportItem",
    "ExportMeta",
    "ExportOptions",
    "FormatSpec",
    "ItemsFactory",
    "SchemaDriftError",
    "WriteStats",
    "provenance_wanted",
    "safe_filename",
    "write_export",
]
