from __future__ import annotations

import pytest

from llmts_gateway.adapters.upstreams import safe_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/generate/abc123", "/generate/abc123"),
        (
            "/providers/models/meta-llama/llama-3.3-70b-instruct:free",
            "/providers/models/meta-llama/llama-3.3-70b-instruct:free",
        ),
        ("/generate/\x08\x05x", "/generate/%08%05x"),
        ("/generate/a?admin=1", "/generate/a%3Fadmin=1"),
        ("/generate/a#frag", "/generate/a%23frag"),
        (
            "/templates/идентификатор",
            "/templates/%D0%B8%D0%B4%D0%B5%D0%BD%D1%82%D0%B8%D1%84%D0%B8%D0%BA%D0%B0%D1%82%D0%BE%D1%80",
        ),
        ("/exports/already%20quoted", "/exports/already%20quoted"),
    ],
)
def test_client_ids_stay_inside_their_segment(raw: str, expected: str) -> None:
    assert safe_path(raw) == expected
