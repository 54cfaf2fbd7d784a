"""A hand-raised validation_error has the details FastAPI gives every other invalid input: [{loc, msg, type}]."""

from llmts_common.errors import InvalidField, Unprocessable


def test_invalid_field_details_are_the_fastapi_shape() -> None:
    exc = InvalidField("count 101 exceeds 100", loc=("body", "count"), type="less_than_equal")
    assert isinstance(exc, Unprocessable)
    assert exc.status_code == 422
    body = exc.body()["error"]
    assert body["code"] == "validation_error"
    assert body["details"] == [
        {"loc": ["body", "count"], "msg": "count 101 exceeds 100", "type": "less_than_equal"}
    ]
