"""Password policy: at least 10 characters, not a common password, not the email address."""

from __future__ import annotations

from llmts_auth.domain.errors import WeakPassword

MIN_LENGTH = 10
# argon2 hashes any length, but an unbounded input is a cheap CPU/memory DoS on the login endpoint.
MAX_LENGTH = 256

# Small list of the most common passwords that are at least MIN_LENGTH long (shorter ones fail the length rule).
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "0987654321",
        "1111111111",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "password1!",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "p@ssw0rd123",
        "qwertyuiop",
        "qwerty12345",
        "qwerty123456",
        "qwertyuiop123",
        "iloveyou12",
        "iloveyou123",
        "abcdefghij",
        "abcd123456",
        "abc1234567",
        "a123456789",
        "letmein123",
        "welcome123",
        "welcome2024",
        "welcome2025",
        "welcome2026",
        "admin12345",
        "administrator",
        "changeme123",
        "football123",
        "baseball123",
        "sunshine123",
        "princess123",
        "dragon12345",
        "monkey12345",
        "superman123",
        "trustno1234",
        "zaq12wsxcde",
        "asdfghjkl1",
        "asdfghjkl123",
        "zxcvbnm123",
        "1234qwerasdf",
        "qazwsxedcrfv",
        "michael123",
        "charlie123",
        "jessica123",
        "computer123",
        "internet123",
        "starwars123",
        "pokemon123",
        "whatever123",
        "aaaaaaaaaa",
        "0000000000",
        "9876543210",
        "password!!",
        "passwordpassword",
        "qwerty1234",
        "йцукенгшщз",
        "пароль12345",
    }
)


def check_password(password: str, *, email: str) -> None:
    """Raise ``WeakPassword`` with the reason when the password breaks the policy."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"password must be at least {MIN_LENGTH} characters long",
            details={"field": "password", "reason": "too_short", "min_length": MIN_LENGTH},
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(
            f"password must be at most {MAX_LENGTH} characters long",
            details={"field": "password", "reason": "too_long", "max_length": MAX_LENGTH},
        )
    folded = password.strip().casefold()
    if folded in COMMON_PASSWORDS:
        raise WeakPassword(
            "password is too common", details={"field": "password", "reason": "common_password"}
        )
    email_folded = email.strip().casefold()
    local_part = email_folded.partition("@")[0]
    if folded == email_folded or (len(local_part) >= MIN_LENGTH and folded == local_part):
        raise WeakPassword(
            "password must not be your email address",
            details={"field": "password", "reason": "matches_email"},
        )
