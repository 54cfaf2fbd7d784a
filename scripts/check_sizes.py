"""Size rules of the source tree (part of `make lint`): no source file in libs/ or services/ over MAX_FILE_LINES
lines, no function over MAX_FUNCTION_LINES lines. Tests are not counted. A file that is one cohesive wall may be
listed in ALLOWED_FILES with the reason written in its package README.

Usage: python scripts/check_sizes.py [--report]   (--report lists the largest files and functions, exit 0)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
# path (relative to the repo root) -> why it stays whole (also said in the package README)
ALLOWED_FILES: dict[str, str] = {
    "libs/templating/src/llmts_templating/_sandbox.py": "one security wall: scan, instrumentation, guards and "
    "runtime checks share one per-render state and are reviewed together (libs/templating/README.md)",
}


def source_files() -> list[Path]:
    files: list[Path] = []
    for top in ("libs", "services", "clients"):
        files.extend(p for p in (ROOT / top).glob("*/src/**/*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def long_functions(path: Path) -> list[tuple[str, int, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            found.append((node.name, node.lineno, length))
    return found


def main(argv: list[str]) -> int:
    report = "--report" in argv
    problems: list[str] = []
    files: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for path in source_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        files.append((lines, rel))
        if lines > MAX_FILE_LINES and rel not in ALLOWED_FILES:
            problems.append(f"{rel}: {lines} lines (max {MAX_FILE_LINES})")
        for name, lineno, length in long_functions(path):
            functions.append((length, f"{rel}:{lineno} {name}"))
            if length > MAX_FUNCTION_LINES:
                problems.append(
                    f"{rel}:{lineno}: function {name} is {length} lines (max {MAX_FUNCTION_LINES})"
                )
    if report:
        for lines, rel in sorted(files, reverse=True)[:15]:
            print(f"{lines:6d}  {rel}")
        print()
        for length, where in sorted(functions, reverse=True)[:25]:
            print(f"{length:6d}  {where}")
        return 0
    for problem in problems:
        print(f"size: {problem}")
    if problems:
        print(f"size: {len(problems)} problem(s); split the file or function into readable parts")
        return 1
    print(
        f"size: {len(files)} files, {len(functions)} functions within {MAX_FILE_LINES}/{MAX_FUNCTION_LINES} lines"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
