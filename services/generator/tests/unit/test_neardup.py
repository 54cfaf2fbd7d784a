"""Near-duplicate control (MinHash LSH) and the diversity report."""

from __future__ import annotations

import pytest

from llmts_generator.domain.diversity import category_report, distinct_n, diversity_report
from llmts_generator.domain.neardup import NearDupIndex, item_text, shingles

BASE = "The Volga is the longest river in Europe and flows into the Caspian Sea through Russia"


def test_item_text_takes_the_chosen_fields_or_every_string() -> None:
    item = {"title": "A", "body": {"text": "B", "n": 3}, "tags": ["c", "d"]}
    assert item_text(item, ["body.text", "tags"]) == "B\nc\nd"
    assert item_text(item) == "A\nB\nc\nd"
    assert item_text(item, ["missing.path"]) == ""


def test_shingles_ignore_case_and_punctuation_and_keep_short_texts() -> None:
    assert shingles("Hello, WORLD! hello world", 2) == {"hello world", "world hello"}
    assert shingles("Привет, мир", 3) == {"привет мир"}
    assert shingles("...", 3) == set()


def test_a_reworded_copy_is_caught_and_a_different_text_is_not() -> None:
    index = NearDupIndex(["text"], threshold=0.7)
    assert index.check_and_add("0", {"text": BASE}) is None
    copy = {"text": BASE.upper() + " today!"}  # one more word, other case and punctuation: Jaccard 14/15
    match = index.check_and_add("1", copy)
    assert match is not None
    assert match[0] == "0"
    assert match[1] >= 0.7
    other = {"text": "Lake Baikal in Siberia holds a fifth of the unfrozen fresh water on the planet"}
    assert index.check_and_add("2", other) is None
    assert len(index) == 2  # the near-duplicate was not indexed
    index.remove("0")
    assert index.check_and_add("3", copy) is None


def test_fields_limit_what_is_compared() -> None:
    index = NearDupIndex(["answer"], threshold=0.8)
    index.add("0", {"question": "same question every time here", "answer": BASE})
    assert (
        index.nearest(
            {
                "question": "same question every time here",
                "answer": "Totally unrelated words about cats and dogs playing",
            }
        )
        is None
    )


def test_items_without_text_are_never_duplicates() -> None:
    index = NearDupIndex(["text"])
    assert index.check_and_add("0", {"n": 1}) is None
    assert index.check_and_add("1", {"n": 1}) is None


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        NearDupIndex(threshold=0)


def test_distinct_n() -> None:
    assert distinct_n(["a b c", "a b c"], 1) == 0.5
    assert distinct_n(["a b", "c d"], 2) == 1.0
    assert distinct_n([], 1) == 0.0


def test_category_report_compares_shares_with_targets() -> None:
    sampled = [{"tone": "a"}] * 6 + [{"tone": "b"}] * 4
    report = category_report(sampled, {"tone": {"a": 0.5, "b": 0.5}})
    assert report["tone"]["values"]["a"] == {"count": 6, "share": 0.6, "target": 0.5}
    assert report["tone"]["max_dev_pp"] == 10.0


def test_diversity_report_counts_items_that_still_have_a_twin() -> None:
    items = [
        {"text": BASE},
        {"text": BASE + " today"},
        {"text": "Completely different content about mountains and snow"},
    ]
    report = diversity_report(items, fields=["text"], threshold=0.7, rejected_near_duplicates=5)
    assert report["items"] == 3
    assert report["near_duplicate_rate"] == round(2 / 3, 4)
    assert report["near_duplicates_rejected"] == 5
    assert 0 < report["distinct_2"] <= 1
