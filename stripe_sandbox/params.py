"""Decoding Stripe's form encoding (`metadata[k]=v`, `types[0]=card`) and checking params."""

from __future__ import annotations

import re

from flask import request

from . import errors

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _KEY.finditer(key)]


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode(pairs) -> dict:
    """Nested dict/list from (key, value) pairs in Stripe's bracket notation."""
    root: dict = {}
    for key, value in pairs:
        parts = _split_key(key) or [key]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1]
        if last == "":
            last = str(len(node))
        node[last] = value
    return _listify(root)


def from_request() -> dict:
    """The request's params: query string for GET/DELETE, form body (or JSON) for POST."""
    if request.method in ("GET", "DELETE"):
        return decode(request.args.items(multi=True))
    if request.is_json:
        return request.get_json(silent=True) or {}
    return decode(request.form.items(multi=True))


class Params:
    """Typed access to a request's params, raising Stripe's validation errors."""

    def __init__(self, data: dict, prefix: str = ""):
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def only(self, allowed: set[str], unmodelled: frozenset[str] = frozenset()) -> None:
        """Reject params the endpoint does not know, and those Stripe knows but the sandbox does not model."""
        for key in self.data:
            if key in unmodelled:
                raise errors.not_modelled(self.name(key))
            if key not in allowed and key != "expand":
                raise errors.unknown_param(self.name(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def str(self, key: str, required: bool = False, choices=None) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise errors.missing(self.name(key))
            return None
        if not isinstance(value, str):
            raise errors.invalid(f"Invalid string: {value!r}", self.name(key))
        if choices is not None and value not in choices:
            options = ", ".join(choices)
            raise errors.invalid(f"Invalid {self.name(key)}: must be one of {options}", self.name(key))
        return value

    def int(self, key: str, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.str(key, required)
        if value is None:
            return None
        if not re.fullmatch(r"-?\d+", value):
            raise errors.invalid(f"Invalid integer: {value}", self.name(key), "parameter_invalid_integer")
        number = int(value)
        if minimum is not None and number < minimum:
            raise errors.invalid(
                f"This value must be greater than or equal to {minimum}.",
                self.name(key),
                "parameter_invalid_integer",
            )
        return number

    def bool(self, key: str) -> bool | None:
        value = self.str(key)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise errors.invalid(f"Invalid boolean: {value}", self.name(key))
        return value == "true"

    def sub(self, key: str, required: bool = False) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise errors.missing(self.name(key))
            return None
        if not isinstance(value, dict):
            raise errors.invalid(f"Invalid object: {self.name(key)}", self.name(key))
        return Params(value, self.name(key))

    def list(self, key: str) -> list | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.invalid(f"Invalid array: {self.name(key)}", self.name(key))
        return value


# Stripe's metadata limits (docs.stripe.com/api/metadata): 50 keys, keys up to 40 characters, values up
# to 500. The messages are Stripe's (stripe/stripe-php#246, a Stripe engineer quoting them; houndci/hound#817).
MAX_KEY, MAX_VALUE, MAX_KEYS = 40, 500, 50


def merge_metadata(current: dict, update) -> dict:
    """Stripe's metadata merge: empty string unsets a key, `metadata=""` unsets all."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise errors.invalid("Invalid object", "metadata")
    merged = dict(current)
    for key, value in update.items():
        if not isinstance(value, str):
            raise errors.invalid(f"Invalid string: {value!r}", f"metadata[{key}]")
        if len(key) > MAX_KEY:
            raise errors.invalid(f"Invalid key: {key} must be a string under {MAX_KEY} characters", "metadata")
        if len(value) > MAX_VALUE:
            raise errors.invalid(f"Invalid val: {value} must be a string under {MAX_VALUE} characters", "metadata")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_KEYS:
        raise errors.invalid("Metadata can have at most 50 keys.", "metadata")
    return merged


_RANGE = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def _created(items: list, params: Params) -> list:
    """Stripe's `created` filter: an exact time, or a range of gt/gte/lt/lte bounds."""
    if not params.has("created"):
        return items
    if not isinstance(params.data["created"], dict):
        at = params.int("created")
        return [item for item in items if item["created"] == at]
    bounds = params.sub("created")
    bounds.only(set(_RANGE))
    for op, test in _RANGE.items():
        limit = bounds.int(op)
        if limit is not None:
            items = [item for item in items if test(item["created"], limit)]
    return items


LIST_PARAMS = {"created", "limit", "starting_after", "ending_before"}


def _cursor(items: list, params: Params, key: str) -> int | None:
    object_id = params.str(key)
    if not object_id:
        return None
    ids = [item["id"] for item in items]
    if object_id not in ids:
        raise errors.no_such("object", object_id, key, 400)
    return ids.index(object_id)


def page(items: list, params: Params, url: str) -> dict:
    """A Stripe list object over `items` (newest first) with created/limit/starting_after/ending_before.

    `ending_before` is the previous page: the `limit` objects just before the cursor in the list
    (docs.stripe.com/api/pagination), `has_more` saying whether more precede them.
    """
    items = _created(items, params)
    limit = params.int("limit", minimum=1) or 10
    if limit > 100:
        raise errors.invalid("This value must be less than or equal to 100.", "limit", "parameter_invalid_integer")
    if params.str("starting_after") and params.str("ending_before"):
        raise errors.only_one_of("ending_before", "starting_after")
    after, before = _cursor(items, params, "starting_after"), _cursor(items, params, "ending_before")
    if before is not None:
        start = max(0, before - limit)
        return {"object": "list", "data": items[start:before], "has_more": start > 0, "url": url}
    if after is not None:
        items = items[after + 1 :]
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}
