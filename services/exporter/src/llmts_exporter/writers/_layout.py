"""Table-or-sections decision shared by the md and html writers."""

from __future__ import annotations

from ._model import ExportMeta, ItemsFactory
from ._plan import Plan


def table_plan(items: ItemsFactory, meta: ExportMeta) -> Plan | None:
    """The plan when every json item is flat (all values scalar), so a table fits; else ``None``.

    With a closed schema the answer comes from the schema; otherwise one extra pass over the items.
    """
    if meta.output_format == "text":
        return None
    plan = Plan.from_schema(meta.schema)
    if plan.nested:
        return None
    if not plan.complete:
        plan.discover(items())
    return plan if plan.is_flat() else None
