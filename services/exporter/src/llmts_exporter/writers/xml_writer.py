"""XML via lxml's incremental writer: ``<items><item index="0">…</item></items>``.

* Element names come from keys. A key that is not a valid XML name (``1st name``, ``a:b``, ``<x>``, ``""``)
  becomes a safe name (``_1st_name``, ``a_b``, ``_x_``, ``_``) and the original is kept in ``key="…"``.
* Lists: one ``<value>`` child per element. ``null``: an empty element with ``null="true"``.
* Text is escaped by lxml; characters XML 1.0 cannot carry (C0 controls, surrogates, U+FFFE/U+FFFF) are
  removed. No DOCTYPE, no entities: nothing for a consumer's parser to expand.
* ``options.envelope`` wraps it as ``<export><meta>…</meta><items>…</items></export>``.
* Provenance (when the export shows it): attributes of ``<item>`` prefixed ``_`` (``_model="…"``,
  ``_attempts="2"``; objects as JSON text; unknown values left out; ``index`` is the item's own attribute).
"""

from __future__ import annotations

import re
from typing import Any

from . import _diversity, _provenance
from ._model import ExportItem, ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink
from ._values import json_text, xml_clean

_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_CHAR = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_NOT_NAME_CHAR = re.compile(f"[^{_NAME_CHAR}]")
_NAME = re.compile(f"[{_NAME_START}][{_NAME_CHAR}]*")
_NOT_ASCII_NAME_CHAR = re.compile(r"[^A-Za-z0-9_.\-]")
_names: dict[str, tuple[str, bool]] = {}
_NAMES_CACHE_MAX = 4096


def safe_name(key: str) -> tuple[str, bool]:
    """``(element name, changed)`` for a key; colons are replaced too (no accidental namespaces)."""
    hit = _names.get(key)
    if hit is not None:
        return hit
    result = _make_name(key)
    if len(_names) < _NAMES_CACHE_MAX:
        _names[key] = result
    return result


def _make_name(key: str) -> tuple[str, bool]:
    from lxml import etree

    if _NAME.fullmatch(key) and _valid_for_lxml(etree, key):
        return key, False
    name = _NOT_NAME_CHAR.sub("_", key)
    if not name or not _NAME.match(name[0]):
        name = "_" + name
    if not _valid_for_lxml(etree, name):  # libxml2 may be stricter than XML 1.0 5th edition
        name = "_" + _NOT_ASCII_NAME_CHAR.sub("_", key)
    return name, True


def _valid_for_lxml(etree: Any, name: str) -> bool:
    try:
        etree.Element(name)
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return xml_clean(value if isinstance(value, str) else str(value))


def _fill(etree: Any, parent: Any, value: Any) -> None:
    """Put ``value`` into ``parent`` (an element already created for it)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            key = str(key)
            name, changed = safe_name(key)
            child = etree.SubElement(parent, name)
            if changed:
                child.set("key", xml_clean(key))
            _fill(etree, child, sub)
    elif isinstance(value, list | tuple):
        for sub in value:
            _fill(etree, etree.SubElement(parent, "value"), sub)
    elif value is None:
        parent.set("null", "true")
    else:
        parent.text = _text(value)


def write_xml(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    from lxml import etree

    count = 0
    provenance = _provenance.wanted(meta, options)
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        appendix = _diversity.report(meta, options)
        if options.envelope or appendix is not None:
            with xf.element("export"):
                head = etree.Element("meta")
                _fill(etree, head, meta.as_dict())
                xf.write(head)
                count = _write_items(etree, xf, items, provenance)
                if appendix is not None:
                    element = etree.Element(_diversity.KEY)
                    _fill(etree, element, dict(appendix))
                    xf.write(element)
        else:
            count = _write_items(etree, xf, items, provenance)
    return count


def _attributes(item: ExportItem, provenance: bool) -> dict[str, str]:
    attrs = {"index": str(item.index)}
    if provenance:
        for name, value in _provenance.as_object(item).items():
            if name != "index":
                text = json_text(value) if isinstance(value, dict | list) else _text(value)
                attrs[_provenance.PREFIX + name] = xml_clean(text)
    return attrs


def _write_items(etree: Any, xf: Any, items: ItemsFactory, provenance: bool) -> int:
    count = 0
    with xf.element("items"):
        for item in items():
            element = etree.Element("item", _attributes(item, provenance))
            _fill(etree, element, item.data)
            xf.write(element)
            count += 1
            if count % 1000 == 0:
                xf.flush()
    return count
