"""Export benchmark: every format over N realistic nested items, each run in its own subprocess.

    uv run python bench/bench_export.py [--n 100000] [--formats csv,xlsx,...] [--n-pdf N] [--repeat 3]

Prints, per format, ``export <fmt>: items=<n> seconds=<s> ratio=<vs baseline> peak_rss_mb=<MB>``.

* Items are product-like objects (nested dicts, lists, Russian and English text) made on the fly by a
  generator that hands them out in pages of 500 — as the service reads MongoDB — never a pre-built list, so
  peak RSS shows a streaming writer. ``seconds`` is the writer's own time: the time spent making the pages
  (measured around each page, in the same run) is subtracted, as the baselines get their input ready-made
  (a DataFrame / plain rows built outside their timed region). The ``#`` line after each format shows the
  time with the items' making included.
* Baselines, measured in the same run, in their own subprocesses: ``pandas.DataFrame.to_csv`` for csv
  (DataFrame built from flattened rows outside the timed region) and openpyxl write-only appending
  pre-flattened plain rows for xlsx. pdf at 100k items prints its speed-up over the 115 s the platypus writer
  took before issue 19 (``ratio=<x>x_vs_115s``, target 3x; the machine's load average is printed beside it).
  Other formats print ``ratio=n/a``.
* peak_rss_mb is the child's ``ru_maxrss`` (interpreter and imports included).
* ``--repeat``: csv/xlsx run baseline and writer alternately that many rounds (default 3: on a shared 2-core
  machine one round's ratio varied 1.2–1.5 from load alone), other formats repeat the timed part in their
  child (default 1); the fastest run is kept, peak RSS covers all runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

ALL_FORMATS = ["json", "jsonl", "csv", "xlsx", "pdf", "md", "html", "xml", "txt", "parquet"]
PAGE = 500
TARGET_RATIO = 1.5
TARGET_RSS_MB = 300.0
BASELINES = {"csv": "pandas.DataFrame.to_csv", "xlsx": "openpyxl write-only, plain rows"}
PDF_BEFORE_SECONDS = 115.0
"""100k items to PDF with the platypus writer (before issue 19), measured on a quiet machine."""
PDF_TARGET_SPEEDUP = 3.0

# ------------------------------------------------------------------------------------------- items
_BRANDS = ["Bosch", "Samsung", "Redmond", "Philips", "Polaris", "Tefal", "Xiaomi", "Скарлетт", "Витязь", "LG"]
_NOUNS = [
    ("Чайник электрический", "Electric kettle"),
    ("Пылесос беспроводной", "Cordless vacuum cleaner"),
    ("Микроволновая печь", "Microwave oven"),
    ("Кофемашина", "Coffee machine"),
    ("Утюг с парогенератором", "Steam iron"),
    ("Блендер погружной", "Hand blender"),
    ("Мультиварка", "Multicooker"),
    ("Тостер", "Toaster"),
]
_CATEGORIES = [
    (11, "Бытовая техника", ["Дом", "Кухня", "Мелкая техника"]),
    (12, "Уборка", ["Дом", "Уборка"]),
    (13, "Кухонная техника", ["Дом", "Кухня"]),
    (14, "Уход за одеждой", ["Дом", "Одежда", "Глажка"]),
]
_CITIES = ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург", "Berlin", "Shenzhen"]
_TAGS = ["новинка", "хит", "sale", "eco", "гарантия 2 года", "premium", "доставка завтра", "imported"]
_SENTENCES = [
    "Корпус из нержавеющей стали, автоматическое отключение при закипании.",
    "Durable stainless-steel body with a concealed heating element.",
    'Защита от перегрева; индикатор уровня воды, объём 1,7 л — "как у профессионалов".',
    "Energy class A+, low noise (42 dB), 2-year warranty.",
    "Подходит для ежедневного использования,\nлегко чистится.",
    "Comes with a user manual in English and Russian.",
]
_ATTRS = [
    ("Мощность", "2200 Вт"),
    ("Цвет", "чёрный"),
    ("Material", "steel"),
    ("Объём", "1,7 л"),
    ("Вес", "1.2 кг"),
]


def _variant(v: int) -> tuple[Any, ...]:
    """The varying text and numbers of one product variant (computed once per variant, not per item)."""
    ru, en = _NOUNS[v % len(_NOUNS)]
    brand = _BRANDS[(v * 7) % len(_BRANDS)]
    cat_id, cat_name, cat_path = _CATEGORIES[(v * 3) % len(_CATEGORIES)]
    start = (v * 5) % len(_SENTENCES)
    description = " ".join(_SENTENCES[(start + k) % len(_SENTENCES)] for k in range(2 + v % 3))
    model = 100 + v % 900
    return (
        f"{ru} {brand} {model}",
        f"{en} {brand} {model}",
        brand,
        cat_id,
        cat_name,
        tuple(cat_path),
        990 + (v * 7919) % 50_000 + 0.99,
        (v * 13) % 40,
        _CITIES[v % len(_CITIES)],
        tuple(_TAGS[(v + k) % len(_TAGS)] for k in range(1 + v % 4)),
        description,
        tuple(_ATTRS[: 2 + v % 4]),
        f"ООО «{brand} Рус»" if v % 2 else f"{brand} Trading Ltd",
        "Россия" if v % 3 else "China",
        10 + (v % 40) / 2,
        15 + (v % 30) / 2,
        8 + (v % 20) / 2,
        round(0.4 + (v % 60) / 10, 2),
        round(3 + (v % 21) / 10, 1),
    )


_VARIANTS = [_variant(v) for v in range(1009)]


def make_item(i: int) -> dict[str, Any]:
    """A fresh product-like object for index ``i``: ~28 leaves, 3 nesting levels, lists of strings and of
    objects, Russian and English text. Its text comes from 1009 precomputed variants so that producing
    items costs little next to writing them (a MongoDB page decode would cost about as much)."""
    (name, name_en, brand, cat_id, cat_name, cat_path, price, discount, city, tags, description, attrs,
     supplier, country, width, height, depth, weight, rating) = _VARIANTS[i % 1009]  # fmt: skip
    return {
        "sku": f"SKU-{i:07d}",
        "name": name,
        "name_en": name_en,
        "brand": brand,
        "category": {"id": cat_id, "name": cat_name, "path": list(cat_path)},
        "price": {"amount": price, "currency": "RUB", "discount_pct": discount, "vat_included": True},
        "in_stock": i % 5 != 0,
        "stock": {"warehouse": city, "quantity": (i * 31) % 500},
        "dimensions": {"width_cm": width, "height_cm": height, "depth_cm": depth, "weight_kg": weight},
        "tags": list(tags),
        "rating": {"average": rating, "count": (i * 17) % 5000},
        "description": description,
        "attributes": [{"name": a, "value": v} for a, v in attrs],
        "supplier": {
            "name": supplier,
            "country": country,
            "contact": {
                "email": f"sales{i % 97}@example.com",
                "phone": f"+7 495 {i % 1000:03d}-{i % 100:02d}-00",
            },
        },
        "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
    }


_S = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sku": _S,
        "name": _S,
        "name_en": _S,
        "brand": _S,
        "category": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"id": {"type": "integer"}, "name": _S, "path": {"type": "array", "items": _S}},
        },
        "price": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "amount": {"type": "number"},
                "currency": _S,
                "discount_pct": {"type": "integer"},
                "vat_included": {"type": "boolean"},
            },
        },
        "in_stock": {"type": "boolean"},
        "stock": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"warehouse": _S, "quantity": {"type": "integer"}},
        },
        "dimensions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {"type": "number"} for k in ("width_cm", "height_cm", "depth_cm", "weight_kg")},
        },
        "tags": {"type": "array", "items": _S},
        "rating": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"average": {"type": "number"}, "count": {"type": "integer"}},
        },
        "description": _S,
        "attributes": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": _S, "value": _S}},
        },
        "supplier": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": _S,
                "country": _S,
                "contact": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"email": _S, "phone": _S},
                },
            },
        },
        "created_at": {"type": "string", "format": "date-time"},
    },
}


SOURCE_SECONDS = [0.0]
"""Time spent making pages inside :func:`paged_items` (summed over every pass of a run)."""


def paged_items(n: int) -> Iterator[Any]:
    """ExportItems made page by page (like a MongoDB cursor's batches), never all at once. The time spent
    making them is added to :data:`SOURCE_SECONDS` (two ``perf_counter`` calls per page of 500)."""
    from llmts_exporter.writers import ExportItem

    for start in range(0, n, PAGE):
        t0 = time.perf_counter()
        page = [ExportItem(i, make_item(i)) for i in range(start, min(start + PAGE, n))]
        SOURCE_SECONDS[0] += time.perf_counter() - t0
        yield from page


def _meta(n: int) -> Any:
    from llmts_exporter.writers import ExportMeta

    return ExportMeta(
        job_id="bench-job-0001",
        template_name="Каталог товаров",
        template_version=3,
        model="gpt-4o-mini",
        created_at=dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC),
        requested=n,
        succeeded=n,
        rejected=0,
        prompt_tokens=120 * n,
        completion_tokens=480 * n,
        cost_usd=0.00035 * n,
        output_format="json",
        schema=SCHEMA,
    )


def _flat_row(data: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Independent flattening for the baselines: dotted keys, lists as JSON text."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flat_row(value, name + ".", out)
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        else:
            out[name] = value


def _flat_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        _flat_row(make_item(i), "", row)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------- child
def _child(target: str, n: int, path: str, repeat: int) -> dict[str, Any]:
    best = float("inf")
    gross = float("inf")
    items = 0
    if target == "source":
        for _ in range(repeat):
            t0 = time.perf_counter()
            items = sum(1 for _ in paged_items(n))
            best = min(best, time.perf_counter() - t0)
    elif target == "baseline-csv":
        import pandas as pd

        df = pd.DataFrame(_flat_rows(n))
        items = len(df)
        for _ in range(repeat):
            t0 = time.perf_counter()
            df.to_csv(path, index=False)
            best = min(best, time.perf_counter() - t0)
    elif target == "baseline-xlsx":
        from openpyxl import Workbook

        dict_rows = _flat_rows(n)
        header = list(dict_rows[0])
        rows = [[r.get(h) for h in header] for r in dict_rows]
        del dict_rows
        items = len(rows)
        for _ in range(repeat):
            t0 = time.perf_counter()
            wb = Workbook(write_only=True)
            ws = wb.create_sheet("items")
            ws.append(header)
            for row in rows:
                ws.append(row)
            wb.save(path)
            best = min(best, time.perf_counter() - t0)
    else:
        from llmts_exporter.writers import write_export

        meta = _meta(n)
        for _ in range(repeat):
            SOURCE_SECONDS[0] = 0.0
            t0 = time.perf_counter()
            with open(path, "wb") as fh:
                stats = write_export(target, lambda: paged_items(n), meta, fh)
            total = time.perf_counter() - t0
            # the writer's own time: the baselines get their input ready-made, so making the items is not counted
            best = min(best, total - SOURCE_SECONDS[0])
            gross = min(gross, total)
            items = stats.items
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "seconds": best,
        "gross_seconds": gross if gross != float("inf") else best,
        "items": items,
        "rss_mb": rss_mb,
        "bytes": os.path.getsize(path) if os.path.exists(path) else 0,
    }


def _run(target: str, n: int, repeat: int, tmp: str) -> dict[str, Any]:
    path = os.path.join(tmp, f"out-{target}")
    cmd = [sys.executable, __file__, "--child", target, "--n", str(n), "--out", path, "--repeat", str(repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{target} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--n-pdf", type=int, default=None, help="items for pdf (default: --n)")
    parser.add_argument("--formats", default=",".join(ALL_FORMATS))
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="rounds (csv/xlsx: baseline and writer alternate; default 3) or timed runs per child (other "
        "formats; default 1); the fastest is kept",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(_child(args.child, args.n, args.out, args.repeat)))
        return

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(formats) - set(ALL_FORMATS)
    if unknown:
        raise SystemExit(f"unknown formats: {', '.join(sorted(unknown))}")
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        source = _run("source", args.n, args.repeat or 1, tmp) if formats else None
        if source:
            print(
                f"# source: producing {args.n} items lazily in pages of {PAGE} takes "
                f"seconds={source['seconds']:.2f} (each writer's run measures its own share and subtracts it)"
            )
        for fmt in formats:
            n = args.n_pdf if fmt == "pdf" and args.n_pdf else args.n
            ratio = "n/a"
            if fmt in BASELINES:
                # Baseline and writer alternate, round by round, so both see the same machine load;
                # the fastest run of each is compared.
                bases = []
                runs = []
                for _ in range(args.repeat or 3):
                    bases.append(_run(f"baseline-{fmt}", n, 1, tmp))
                    runs.append(_run(fmt, n, 1, tmp))
                base = min(bases, key=lambda r: float(r["seconds"]))
                res = {
                    **min(runs, key=lambda r: float(r["seconds"])),
                    "rss_mb": max(r["rss_mb"] for r in runs),
                }
                print(
                    f"# baseline {fmt} ({BASELINES[fmt]}): seconds={base['seconds']:.2f} peak_rss_mb={base['rss_mb']:.0f}"
                )
                r = res["seconds"] / base["seconds"]
                ratio = f"{r:.2f}"
                if r > TARGET_RATIO:
                    failures.append(f"{fmt} ratio {r:.2f} > {TARGET_RATIO}")
            else:
                res = _run(fmt, n, args.repeat or 1, tmp)
            if fmt == "pdf" and n == 100_000:
                speedup = PDF_BEFORE_SECONDS / res["seconds"]
                ratio = f"{speedup:.2f}x_vs_{PDF_BEFORE_SECONDS:.0f}s"
                if speedup < PDF_TARGET_SPEEDUP:
                    failures.append(
                        f"pdf {speedup:.2f}x faster than {PDF_BEFORE_SECONDS:.0f} s < {PDF_TARGET_SPEEDUP}x"
                    )
            if res["rss_mb"] > TARGET_RSS_MB:
                failures.append(f"{fmt} peak RSS {res['rss_mb']:.0f} MB > {TARGET_RSS_MB:.0f} MB")
            print(
                f"export {fmt}: items={res['items']} seconds={res['seconds']:.2f} ratio={ratio} "
                f"peak_rss_mb={res['rss_mb']:.0f}",
                flush=True,
            )
            print(
                f"#   {fmt}: {res['bytes'] / 1e6:.1f} MB written; with making the items "
                f"seconds={res['gross_seconds']:.2f}; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    if failures:
        print("# targets missed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
