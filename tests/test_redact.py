import pytest

from chatcontract.redact import REDACTED, redact_headers, redact_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-abcdefghijklmnopqrstuvwx used", "sk-abcdefghijklmnopqrstuvwx"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
    ],
    ids=["openai-key", "bearer", "jwt", "aws"],
)
def test_credential_shapes_are_redacted(text, secret):
    out = redact_text(text)
    assert REDACTED in out
    assert secret not in out


def test_known_secret_is_redacted_even_without_a_credential_shape():
    assert redact_text("token=plainsecret99 end", ["plainsecret99"]) == "token=*** end"


def test_plain_text_is_untouched():
    assert redact_text("model name is required") == "model name is required"


def test_sensitive_headers_are_redacted_case_insensitively():
    headers = redact_headers({"Authorization": "Bearer sk-x", "X-API-Key": "k", "Accept": "json"})
    assert headers == {"Authorization": REDACTED, "X-API-Key": REDACTED, "Accept": "json"}
