"""Seed dataset row choice: ordered, shuffled (a permutation per pass), with replacement; reproducible."""

from __future__ import annotations

from collections import Counter

import pytest

from llmts_templating.seeding import row_for


@pytest.mark.parametrize("rows", [1, 2, 3, 10, 97, 1000, 4096, 5000])
def test_shuffle_is_a_permutation_per_pass(rows: int) -> None:
    first = [row_for("shuffle", rows, 42, i) for i in range(rows)]
    assert sorted(first) == list(range(rows))
    second = [row_for("shuffle", rows, 42, rows + i) for i in range(rows)]
    assert sorted(second) == list(range(rows))
    if rows >= 10:
        assert first != list(range(rows))  # not the file order
        assert first != second  # each pass its own order


def test_shuffle_depends_on_the_seed_and_is_reproducible() -> None:
    a = [row_for("shuffle", 500, 1, i) for i in range(500)]
    assert a == [row_for("shuffle", 500, 1, i) for i in range(500)]
    assert a != [row_for("shuffle", 500, 2, i) for i in range(500)]


def test_ordered_cycles_through_the_file() -> None:
    assert [row_for("ordered", 3, 9, i) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_with_replacement_is_roughly_uniform_and_repeats() -> None:
    draws = [row_for("with_replacement", 10, 7, i) for i in range(5000)]
    counts = Counter(draws)
    assert set(counts) == set(range(10))
    assert max(counts.values()) < 600
    assert len(set(draws[:10])) < 10 or len(set(draws[10:20])) < 10  # repeats before every row was used
    assert draws == [row_for("with_replacement", 10, 7, i) for i in range(5000)]


def test_an_empty_dataset_is_an_error() -> None:
    with pytest.raises(ValueError, match="no rows"):
        row_for("ordered", 0, 1, 0)
