"""Samplers: item variables drawn without a model call (no tokens), reproducibly from the job's seed.

A template declares them among its ``variables``: a variable whose value is an object with a ``sampler`` key is a
sampler spec (any other value stays a plain default)::

    "variables": {
      "tone":    {"sampler": "category", "values": ["formal", "friendly", "terse"], "weights": [2, 1, 1]},
      "channel": {"sampler": "subcategory", "category": "tone",
                  "values": {"formal": ["email", "letter"], "friendly": ["chat"], "terse": ["sms", "chat"]}},
      "rating":  {"sampler": "uniform", "type": "int", "low": 1, "high": 5},
      "price":   {"sampler": "normal", "mean": 40, "std": 12, "min": 1, "decimals": 2},
      "when":    {"sampler": "datetime", "start": "2024-01-01", "end": "2024-12-31", "format": "%d.%m.%Y"},
      "ref":     {"sampler": "uuid"},
      "author":  {"sampler": "person", "locale": "ru_RU"},
      "title":   {"sampler": "expression", "template": "{{ tone }} note by {{ author.first_name }}"}
    }

Draws are a pure function of ``(seed, index, column)``: the same job seed gives every item the same values on every
run (and a regenerated slot keeps its values). Categories are **stratified**, not drawn independently: item ``i``'s
category comes from a house-monotone apportionment of the indexes to the weights (each category's count among the
first ``n`` items stays within one of ``n × share``), shuffled inside blocks of :data:`BLOCK` indexes, so any run of
items matches the target shares to within a point or so while the order still looks random. Expressions render in
the templating sandbox (its limits and deadline) over the columns they name; columns are drawn in dependency order
and a cycle is an error.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

__all__ = [
    "BLOCK",
    "SamplerError",
    "SamplerPlan",
    "SamplerSpec",
    "is_sampler_spec",
]

BLOCK = 100
PERSON_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "city",
    "country",
    "job",
    "company",
    "birthdate",
)


class SamplerError(ValueError):
    """A sampler spec that cannot be used: ``path`` names the variable (``variables.<name>[.<field>]``)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySpec(_Spec):
    sampler: Literal["category"]
    values: list[Any] = Field(min_length=1, max_length=1000)
    weights: list[float] | None = Field(default=None, description="Relative weights (default: equal).")

    @model_validator(mode="after")
    def _weights(self) -> CategorySpec:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have one number per value")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be ≥ 0 with a positive sum")
        return self

    def shares(self) -> list[float]:
        weights = self.weights or [1.0] * len(self.values)
        total = sum(weights)
        return [w / total for w in weights]


class SubcategorySpec(_Spec):
    sampler: Literal["subcategory"]
    category: str = Field(description="The category variable this one is conditioned on.")
    values: dict[str, list[Any]] = Field(description="Sub-values per category value.")
    weights: dict[str, list[float]] | None = None


class UniformSpec(_Spec):
    sampler: Literal["uniform"]
    low: float
    high: float
    type: Literal["int", "float"] = "float"
    decimals: int | None = Field(default=None, ge=0, le=12)

    @model_validator(mode="after")
    def _range(self) -> UniformSpec:
        if self.high < self.low:
            raise ValueError("high must be ≥ low")
        return self


class NormalSpec(_Spec):
    sampler: Literal["normal"]
    mean: float
    std: float = Field(gt=0)
    type: Literal["int", "float"] = "float"
    min: float | None = None
    max: float | None = None
    decimals: int | None = Field(default=None, ge=0, le=12)


class DatetimeSpec(_Spec):
    sampler: Literal["datetime"]
    start: datetime
    end: datetime
    format: str | None = Field(
        default=None, max_length=100, description="strftime format (default ISO 8601)."
    )

    @model_validator(mode="after")
    def _range(self) -> DatetimeSpec:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class UuidSpec(_Spec):
    sampler: Literal["uuid"]


class PersonSpec(_Spec):
    sampler: Literal["person"]
    locale: str = Field(default="en_US", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    fields: list[Literal[PERSON_FIELDS]] | None = Field(  # type: ignore[valid-type]
        default=None, description="Which fields the value has (default: all)."
    )


class ExpressionSpec(_Spec):
    sampler: Literal["expression"]
    template: str = Field(
        min_length=1, max_length=4000, description="A sandboxed Jinja template over columns."
    )
    type: Literal["str", "int", "float"] = "str"


SamplerSpec = Annotated[
    CategorySpec
    | SubcategorySpec
    | UniformSpec
    | NormalSpec
    | DatetimeSpec
    | UuidSpec
    | PersonSpec
    | ExpressionSpec,
    Field(discriminator="sampler"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(SamplerSpec)


def is_sampler_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and "sampler" in value


def _seed_of(*parts: Any) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _number(value: float, kind: str, decimals: int | None) -> int | float:
    if kind == "int":
        return round(value)
    return round(value, decimals) if decimals is not None else value


class _Stratified:
    """Item index → category index: a house-monotone apportionment (each step gives the next index to the
    category furthest below its share), shuffled inside each block of :data:`BLOCK` indexes."""

    def __init__(self, shares: Sequence[float], salt: str) -> None:
        self._shares = list(shares)
        self._salt = salt
        self._sequence: list[int] = []
        self._counts = [0] * len(shares)
        self._blocks: dict[tuple[int, int], list[int]] = {}

    def _extend(self, upto: int) -> None:
        while len(self._sequence) < upto:
            n = len(self._sequence) + 1
            deficits = [n * share - count for share, count in zip(self._shares, self._counts, strict=True)]
            pick = max(range(len(deficits)), key=lambda k: (deficits[k], -k))
            self._counts[pick] += 1
            self._sequence.append(pick)

    def __call__(self, index: int, seed: int) -> int:
        """The category of item ``index``; the job ``seed`` shuffles each block its own way."""
        block = index // BLOCK
        order = self._blocks.get((seed, block))
        if order is None:
            self._extend((block + 1) * BLOCK)
            order = self._sequence[block * BLOCK : (block + 1) * BLOCK]
            random.Random(_seed_of(self._salt, seed, "block", block)).shuffle(order)
            if len(self._blocks) > 64:
                self._blocks.clear()
            self._blocks[(seed, block)] = order
        return order[index % BLOCK]


@lru_cache(maxsize=16)
def _faker(locale: str) -> Any:
    from faker import Faker

    return Faker(locale)


def _person(spec: PersonSpec, seed: int) -> dict[str, Any]:
    fake = _faker(spec.locale)
    fake.seed_instance(seed)
    first, last = fake.first_name(), fake.last_name()
    person: dict[str, Any] = {
        "name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "email": fake.email(),
        "phone_number": fake.phone_number(),
        "city": fake.city(),
        "country": fake.current_country() if hasattr(fake, "current_country") else fake.country(),
        "job": fake.job(),
        "company": fake.company(),
        "birthdate": fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
    }
    return {k: person[k] for k in spec.fields} if spec.fields else person


Renderer = Callable[[str, Mapping[str, Any]], str]


class SamplerPlan:
    """The sampler variables of a template, validated and ordered; :meth:`draw` gives one item's values."""

    def __init__(
        self, specs: Mapping[str, Any], render: Renderer | None = None, undeclared: Any = None
    ) -> None:
        self.specs: dict[str, Any] = {}
        for name, raw in specs.items():
            try:
                self.specs[name] = _ADAPTER.validate_python(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"][1:])
                path = f"variables.{name}" + (f".{where}" if where else "")
                raise SamplerError(f"invalid sampler for {name!r}: {first['msg']}", path) from None
        self._render = render
        self._undeclared = undeclared
        self.order = self._ordered()
        self._strata = {
            name: _Stratified(spec.shares(), name)
            for name, spec in self.specs.items()
            if isinstance(spec, CategorySpec)
        }

    @classmethod
    def from_variables(cls, variables: Mapping[str, Any], **kw: Any) -> SamplerPlan:
        """The samplers among a template's ``variables`` (the others are plain defaults)."""
        return cls({k: v for k, v in variables.items() if is_sampler_spec(v)}, **kw)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def _needs(self, name: str, spec: Any) -> set[str]:
        if isinstance(spec, SubcategorySpec):
            if spec.category not in self.specs or not isinstance(self.specs[spec.category], CategorySpec):
                raise SamplerError(f"{name!r} is conditioned on {spec.category!r}, which is no category sampler",
                                   f"variables.{name}.category")  # fmt: skip
            return {spec.category}
        if isinstance(spec, ExpressionSpec):
            try:
                names = self._names_in(spec.template)
            except Exception as exc:  # the sandbox refused it, or a syntax error
                raise SamplerError(f"expression {name!r}: {exc}", f"variables.{name}.template") from None
            return {n for n in names if n in self.specs and n != name}
        return set()

    def _names_in(self, template: str) -> set[str]:
        if self._undeclared is not None:
            return set(self._undeclared(template))
        from llmts_templating.render import undeclared_variables

        return undeclared_variables(template)

    def _ordered(self) -> list[str]:
        needs = {name: self._needs(name, spec) for name, spec in self.specs.items()}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " → ".join([*trail[trail.index(name) :], name])
                raise SamplerError(
                    f"sampler variables depend on each other in a cycle: {cycle}", f"variables.{name}"
                )
            state[name] = 1
            for dep in sorted(needs[name]):
                visit(dep, [*trail, name])
            state[name] = 2
            order.append(name)

        for name in sorted(self.specs):
            visit(name, [])
        return order

    def targets(self) -> dict[str, dict[str, float]]:
        """Each category sampler's target share per value (for the diversity report)."""
        return {
            name: {str(v): s for v, s in zip(spec.values, spec.shares(), strict=True)}
            for name, spec in self.specs.items()
            if isinstance(spec, CategorySpec)
        }

    def draw(self, seed: int, index: int, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The sampled values of item ``index`` of a job whose seed is ``seed`` (``base``: the item's other
        variables, visible to expressions)."""
        values: dict[str, Any] = {}
        for name in self.order:
            rng = random.Random(_seed_of(seed, index, name))
            values[name] = self._one(name, self.specs[name], rng, seed, index, {**(base or {}), **values})
        return values

    def _one(
        self, name: str, spec: Any, rng: random.Random, seed: int, index: int, ctx: Mapping[str, Any]
    ) -> Any:
        if isinstance(spec, CategorySpec):
            return spec.values[self._strata[name](index, seed)]
        if isinstance(spec, SubcategorySpec):
            parent = str(ctx[spec.category])
            options = spec.values.get(parent)
            if not options:
                return None
            weights = (spec.weights or {}).get(parent)
            return rng.choices(
                options, weights=weights if weights and len(weights) == len(options) else None
            )[0]
        if isinstance(spec, UniformSpec):
            if spec.type == "int":
                return rng.randint(int(spec.low), int(spec.high))
            return _number(rng.uniform(spec.low, spec.high), "float", spec.decimals)
        if isinstance(spec, NormalSpec):
            value = rng.gauss(spec.mean, spec.std)
            value = max(value, spec.min) if spec.min is not None else value
            value = min(value, spec.max) if spec.max is not None else value
            return _number(value, spec.type, spec.decimals)
        if isinstance(spec, DatetimeSpec):
            start, end = _aware(spec.start), _aware(spec.end)
            moment = start + (end - start) * rng.random()
            return moment.strftime(spec.format) if spec.format else moment.isoformat().replace("+00:00", "Z")
        if isinstance(spec, UuidSpec):
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if isinstance(spec, PersonSpec):
            return _person(spec, rng.getrandbits(63))
        return self._expression(name, spec, ctx)

    def _expression(self, name: str, spec: ExpressionSpec, ctx: Mapping[str, Any]) -> Any:
        render = self._render
        if render is None:
            from llmts_templating.render import _default_renderer

            render = _default_renderer().render
        try:
            text = render(spec.template, dict(ctx))
        except Exception as exc:  # RenderError (sandbox, limits, undefined names) or the pool's failure
            raise SamplerError(f"expression {name!r}: {exc}", f"variables.{name}.template") from None
        if spec.type == "str":
            return text
        try:
            return int(text.strip()) if spec.type == "int" else float(text.strip())
        except ValueError:
            raise SamplerError(f"expression {name!r} gave {text[:80]!r}, not a {spec.type}",
                               f"variables.{name}.template") from None  # fmt: skip


def _aware(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)
