"""``python -m llmts_auth admin grant|revoke <email>``: set the role of an account directly in the auth database
(the first admin, or a recovery when no admin is left). Uses the same settings as the service (``MONGO_URL``,
``MONGO_DB``); the change reaches the user's token at their next login or refresh."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from llmts_auth.adapters.mongo import MongoUsers
from llmts_auth.domain.errors import InvalidEmail
from llmts_auth.domain.users import Role, normalize_email
from llmts_auth.settings import AuthSettings
from llmts_common.mongo import create_client


async def set_role(settings: AuthSettings, email: str, role: Role) -> str:
    """Set the role of the account with ``email``; answers its user id. Raises ``LookupError`` if there is none."""
    client = create_client(
        settings.mongo_url.get_secret_value(),
        server_selection_timeout_ms=settings.mongo_server_selection_timeout_ms,
        app_name="llmts-auth-cli",
    )
    try:
        users = MongoUsers(client[settings.database_name], None)
        user = await users.by_email(normalize_email(email))
        if user is None:
            raise LookupError(f"no account with the email {email!r}")
        await users.set_role(user.id, role)
        return user.id
    finally:
        await client.close()


def main(argv: Sequence[str], settings: AuthSettings | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmts_auth admin", description="Grant or revoke the admin role."
    )
    parser.add_argument("action", choices=["grant", "revoke"])
    parser.add_argument("email")
    args = parser.parse_args(argv)
    role: Role = "admin" if args.action == "grant" else "user"
    try:
        user_id = asyncio.run(set_role(settings or AuthSettings(), args.email, role))
    except (LookupError, InvalidEmail) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(
        f"{args.email}: role {role} (user {user_id}); effective at the next login or token refresh\n"
    )
    return 0
