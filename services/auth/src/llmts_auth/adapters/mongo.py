"""Mongo repositories of the auth service (collections: users, refresh_tokens, oauth_states, login_failures,
signing_keys). Only single-document atomic operations; expiry is enforced in code and by a periodic purge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from llmts_auth.adapters.key_encryption import KeyCipher, locked_without_key
from llmts_auth.domain.errors import EmailTaken
from llmts_auth.domain.ports import OAuthState
from llmts_auth.domain.throttle import ThrottleKey, ThrottlePolicy, window_bounds
from llmts_auth.domain.tokens import RefreshTokenRecord, RefreshVerdict, SigningKey, judge_refresh
from llmts_auth.domain.users import Identity, Role, User
from llmts_common.contracts import Message
from llmts_common.mongo import Collection, Database, IndexSpec, is_duplicate_key
from llmts_common.outbox import OUTBOX_FIELD, EmbeddedOutbox

log = logging.getLogger("llmts.auth.mongo")

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
OAUTH_STATES = "oauth_states"
LOGIN_FAILURES = "login_failures"
SIGNING_KEYS = "signing_keys"

LIVE: dict[str, Any] = {"erased": {"$ne": True}}  # erased accounts are tombstones until their events are out

INDEXES: list[IndexSpec] = [
    IndexSpec(USERS, [("email", 1)], unique=True, name="email_unique"),
    IndexSpec(USERS, [("identities.provider", 1), ("identities.subject", 1)], name="identities"),
    IndexSpec(REFRESH_TOKENS, [("family_id", 1)], name="family_id"),
    IndexSpec(REFRESH_TOKENS, [("user_id", 1)], name="user_id"),
    IndexSpec(REFRESH_TOKENS, [("expires_at", 1)], name="expires_at"),
    IndexSpec(OAUTH_STATES, [("expires_at", 1)], name="expires_at"),
    IndexSpec(LOGIN_FAILURES, [("expires_at", 1)], name="expires_at"),
]


class MongoUsers:
    """``users``: one document per account; its events (registered, disabled, deleted…) ride in its ``_outbox``."""

    def __init__(self, db: Database, outbox: EmbeddedOutbox | None) -> None:
        self.col: Collection = db[USERS]
        self._outbox = outbox
        self._flushes: set[asyncio.Task[Any]] = set()

    async def add(self, user: User, *, events: Sequence[Message] = ()) -> None:
        doc = _user_doc(user)
        if events:
            doc[OUTBOX_FIELD] = self._entries(events)
        try:
            await self.col.insert_one(doc)
        except Exception as exc:
            if is_duplicate_key(exc):
                raise EmailTaken("an account with this email already exists") from exc
            raise
        if events:
            # Fast path off the request; if it fails (Kafka down) the relay publishes it later.
            self._flush_soon(user.id)

    async def _flush(self, user_id: str) -> None:
        assert self._outbox is not None
        try:
            await self._outbox.flush_document(self.col, user_id)
        except Exception as exc:
            log.warning(
                "account event fast-path publish failed, the relay will retry: %s", type(exc).__name__
            )

    async def drain(self) -> None:
        """Wait for in-flight fast-path publishes (shutdown)."""
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def get(self, user_id: str) -> User | None:
        return _user(await self.col.find_one({"_id": user_id, **LIVE}, {OUTBOX_FIELD: 0}))

    async def by_email(self, email: str) -> User | None:
        return _user(await self.col.find_one({"email": email}, {OUTBOX_FIELD: 0}))

    async def by_identity(self, identity: Identity) -> User | None:
        doc = await self.col.find_one(
            {
                "identities": {"$elemMatch": {"provider": identity.provider, "subject": identity.subject}},
                **LIVE,
            },
            {OUTBOX_FIELD: 0},
        )
        return _user(doc)

    async def link_identity(self, user_id: str, identity: Identity) -> None:
        await self.col.update_one(
            {"_id": user_id},
            {"$addToSet": {"identities": {"provider": identity.provider, "subject": identity.subject}}},
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.col.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def delete(self, user_id: str) -> bool:
        result = await self.col.delete_one({"_id": user_id})
        return result.deleted_count == 1

    async def set_role(self, user_id: str, role: Role) -> None:
        await self.col.update_one({"_id": user_id, **LIVE}, {"$set": {"role": role}})

    async def set_disabled(self, user_id: str, disabled: bool, *, events: Sequence[Message] = ()) -> None:
        update: dict[str, Any] = {"$set": {"disabled": disabled}}
        if events:
            update["$push"] = {OUTBOX_FIELD: {"$each": self._entries(events)}}
        await self.col.update_one({"_id": user_id, **LIVE}, update)
        if events:
            self._flush_soon(user_id)

    async def erase(self, user_id: str, *, events: Sequence[Message] = ()) -> bool:
        """Replace the document by a tombstone that keeps only the pending events (the relay still publishes them);
        ``purge_erased`` removes tombstones whose events are out."""
        tombstone: dict[str, Any] = {
            "email": f"{user_id}@erased.invalid",  # keeps the unique index happy; the real address is freed
            "erased": True,
            "erased_at": datetime.now(UTC),
            OUTBOX_FIELD: self._entries(events),
        }
        result = await self.col.replace_one({"_id": user_id, **LIVE}, tombstone)
        if result.modified_count == 1 and events:
            self._flush_soon(user_id)
        return result.modified_count == 1

    async def purge_erased(self, *, before: datetime) -> int:
        result = await self.col.delete_many(
            {"erased": True, "erased_at": {"$lt": before}, f"{OUTBOX_FIELD}.0": {"$exists": False}}
        )
        return result.deleted_count

    async def page(self, *, offset: int, limit: int) -> tuple[list[User], int]:
        total = await self.col.count_documents(LIVE)
        cursor = self.col.find(LIVE, {OUTBOX_FIELD: 0}).sort([("created_at", 1), ("_id", 1)]).skip(offset)
        rows = [u for doc in await cursor.limit(limit).to_list(limit) if (u := _user(doc)) is not None]
        return rows, total

    def _entries(self, events: Sequence[Message]) -> list[dict[str, Any]]:
        if self._outbox is None:
            raise RuntimeError("events given but no outbox configured")
        return [self._outbox.entry(e) for e in events]

    def _flush_soon(self, user_id: str) -> None:
        if self._outbox is None:
            return
        task = asyncio.create_task(self._flush(user_id))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)


def _user_doc(user: User) -> dict[str, Any]:
    return {
        "_id": user.id,
        "email": user.email,
        "name": user.name,
        "created_at": user.created_at,
        "password_hash": user.password_hash,
        "identities": [{"provider": i.provider, "subject": i.subject} for i in user.identities],
        "role": user.role,
        "disabled": user.disabled,
    }


def _user(doc: dict[str, Any] | None) -> User | None:
    if doc is None or doc.get("erased"):
        return None
    return User(
        id=doc["_id"],
        email=doc["email"],
        name=doc.get("name"),
        created_at=doc["created_at"],
        password_hash=doc.get("password_hash"),
        identities=tuple(Identity(i["provider"], i["subject"]) for i in doc.get("identities") or []),
        role="admin" if doc.get("role") == "admin" else "user",
        disabled=bool(doc.get("disabled", False)),
    )


class MongoRefreshTokens:
    """``refresh_tokens``: ``_id`` is the sha256 of the token; the token itself is never stored."""

    def __init__(self, db: Database) -> None:
        self.col: Collection = db[REFRESH_TOKENS]

    async def add(self, record: RefreshTokenRecord) -> None:
        await self.col.insert_one(
            {
                "_id": record.token_hash,
                "user_id": record.user_id,
                "family_id": record.family_id,
                "parent": record.parent_hash,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "spent": record.spent,
                "revoked": record.revoked,
            }
        )

    async def consume(
        self, token_hash: str, *, now: datetime
    ) -> tuple[RefreshTokenRecord | None, RefreshVerdict]:
        doc = await self.col.find_one_and_update(
            {"_id": token_hash, "spent": False, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"spent": True, "spent_at": now}},
            return_document=ReturnDocument.BEFORE,
        )
        if doc is not None:
            return _refresh(doc), RefreshVerdict.VALID
        record = await self.get(token_hash)
        verdict = judge_refresh(record, now=now)
        if verdict is RefreshVerdict.VALID:  # cannot normally happen; refuse without side effects
            verdict = RefreshVerdict.UNKNOWN
        return record, verdict

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        doc = await self.col.find_one({"_id": token_hash})
        return _refresh(doc) if doc else None

    async def revoke_family(self, family_id: str) -> int:
        result = await self.col.update_many({"family_id": family_id}, {"$set": {"revoked": True}})
        return result.modified_count

    async def revoke_user(self, user_id: str) -> int:
        result = await self.col.update_many({"user_id": user_id}, {"$set": {"revoked": True}})
        return result.modified_count

    async def purge_expired(self, *, before: datetime) -> int:
        result = await self.col.delete_many({"expires_at": {"$lt": before}})
        return result.deleted_count


def _refresh(doc: dict[str, Any]) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=doc["_id"],
        user_id=doc["user_id"],
        family_id=doc["family_id"],
        parent_hash=doc.get("parent"),
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        spent=bool(doc.get("spent")),
        revoked=bool(doc.get("revoked")),
    )


class MongoOAuthStates:
    """``oauth_states``: state → PKCE verifier, nonce, redirect URI; removed on first use."""

    def __init__(self, db: Database) -> None:
        self.col: Collection = db[OAUTH_STATES]

    async def add(self, state: OAuthState) -> None:
        await self.col.insert_one(
            {
                "_id": state.state,
                "provider": state.provider,
                "code_verifier": state.code_verifier,
                "nonce": state.nonce,
                "redirect_uri": state.redirect_uri,
                "expires_at": state.expires_at,
            }
        )

    async def consume(self, state: str) -> OAuthState | None:
        doc = await self.col.find_one_and_delete({"_id": state})
        if doc is None:
            return None
        return OAuthState(
            state=doc["_id"],
            provider=doc["provider"],
            code_verifier=doc["code_verifier"],
            nonce=doc["nonce"],
            redirect_uri=doc["redirect_uri"],
            expires_at=doc["expires_at"],
        )

    async def purge_expired(self, *, before: datetime) -> int:
        result = await self.col.delete_many({"expires_at": {"$lt": before}})
        return result.deleted_count


class MongoLoginThrottle:
    """``login_failures``: one counter document per (scope, hashed key, window): ``$inc`` count, ``$max`` last."""

    def __init__(self, db: Database, policy: ThrottlePolicy) -> None:
        self.col: Collection = db[LOGIN_FAILURES]
        self.policy = policy

    def _id(self, key: ThrottleKey, now: datetime) -> tuple[str, datetime]:
        start, end = window_bounds(now, self.policy.window)
        return f"{key.scope}:{key.key}:{int(start.timestamp())}", end

    async def blocked_until(self, keys: Sequence[ThrottleKey], *, now: datetime) -> datetime | None:
        ids = {self._id(k, now)[0]: k for k in keys}
        latest: datetime | None = None
        async for doc in self.col.find({"_id": {"$in": list(ids)}}):
            until = ids[doc["_id"]].blocked_until(
                int(doc.get("count", 0)), doc.get("last_at"), doc["expires_at"]
            )
            if until is not None and until > now and (latest is None or until > latest):
                latest = until
        return latest

    async def record_failure(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        for key in keys:
            doc_id, end = self._id(key, now)
            await self.col.update_one(
                {"_id": doc_id},
                {
                    "$inc": {"count": 1},
                    "$max": {"last_at": now},
                    "$setOnInsert": {"scope": key.scope, "expires_at": end},
                },
                upsert=True,
            )

    async def clear(self, key: ThrottleKey, *, now: datetime) -> None:
        await self.col.delete_one({"_id": self._id(key, now)[0]})

    async def purge_expired(self, *, before: datetime) -> int:
        result = await self.col.delete_many({"expires_at": {"$lt": before}})
        return result.deleted_count


class MongoSigningKeys:
    """``signing_keys``: the private JWK is stored encrypted (``private_jwk_enc``, a Fernet token) when a
    :class:`KeyCipher` is configured, else in plain text (``private_jwk``; development only)."""

    def __init__(self, db: Database, cipher: KeyCipher | None = None) -> None:
        self.col: Collection = db[SIGNING_KEYS]
        self.cipher = cipher

    def _private(self, doc: dict[str, Any]) -> dict[str, Any]:
        token = doc.get("private_jwk_enc")
        if token is None:
            private: dict[str, Any] = doc["private_jwk"]
            return private
        if self.cipher is None:
            raise locked_without_key(doc["_id"])
        return self.cipher.decrypt(token, kid=doc["_id"])

    async def all(self) -> list[SigningKey]:
        return [
            SigningKey(
                kid=doc["_id"],
                alg=doc["alg"],
                public_jwk=doc["public_jwk"],
                private_jwk=self._private(doc),
                created_at=doc["created_at"],
                activated_at=doc["activated_at"],
                publish_until=doc.get("publish_until"),
            )
            async for doc in self.col.find({})
        ]

    async def add(self, key: SigningKey) -> None:
        secret: dict[str, Any] = (
            {"private_jwk_enc": self.cipher.encrypt(key.private_jwk)}
            if self.cipher is not None
            else {"private_jwk": key.private_jwk}
        )
        await self.col.insert_one(
            {
                "_id": key.kid,
                "alg": key.alg,
                "public_jwk": key.public_jwk,
                **secret,
                "created_at": key.created_at,
                "activated_at": key.activated_at,
                "publish_until": key.publish_until,
            }
        )

    async def secure_at_rest(self) -> dict[str, int]:
        """At start-up, before any key is used: check that every stored key can be read (raises
        :class:`SigningKeysLocked` if one is encrypted and the key is missing or wrong), encrypt the keys still in
        plain text and re-encrypt those under an old encryption key. Conditional updates: replicas starting
        together do the same work once each, harmlessly. Answers what it did, by kind."""
        done = {"encrypted": 0, "reencrypted": 0, "plaintext": 0}
        async for doc in self.col.find({}):
            kid, token = doc["_id"], doc.get("private_jwk_enc")
            private = self._private(doc)
            if self.cipher is None:
                done["plaintext"] += 1
            elif token is None:
                await self.col.update_one(
                    {"_id": kid, "private_jwk": {"$exists": True}},
                    {
                        "$set": {"private_jwk_enc": self.cipher.encrypt(private)},
                        "$unset": {"private_jwk": ""},
                    },
                )
                done["encrypted"] += 1
            elif not self.cipher.is_current(token):
                await self.col.update_one(
                    {"_id": kid, "private_jwk_enc": token},
                    {"$set": {"private_jwk_enc": self.cipher.encrypt(private)}},
                )
                done["reencrypted"] += 1
        return done

    async def retire(self, kid: str, *, publish_until: datetime) -> None:
        await self.col.update_one(
            {"_id": kid, "publish_until": None}, {"$set": {"publish_until": publish_until}}
        )
