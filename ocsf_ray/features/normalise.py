"""Normalisers that turn free text and identifiers into low-cardinality OCSF values.

Every OCSF user needs these: a log message is only comparable across events once its
variable parts are masked, a URL path once the ids in it are, an IP once reduced to
its subnet, a user agent once reduced to its product. Each is a Polars expression,
chosen per column by OCSF attribute name or, for paths, by content.

Messages: the masks of `MESSAGE_MASKS` (quoted strings, UUIDs, IPv4 addresses, dotted
names, hex, numbers) live here, and only here. Applied alone (`message_template`) they
are the regex templates of specs fitted before Drain; a fitted spec's message feature
also carries mined Drain templates (`ocsf_ray.features.templates.TemplateState`, which
records these masks as drain3 masking instructions), and `normalised` then maps each
masked message to its Drain template.
"""

from __future__ import annotations

import polars as pl

from ocsf_ray.features.templates import TemplateState, drain_templates

_QUOTED = r"""'[^']*'|"[^"]*\""""
_UUID = r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
_IPV4 = r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"
_HEX = r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b"
_NUMBER = r"[-+]?\d+(\.\d+)?"
_DOTTED_NAME = r"\b[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+\b"  # user names, hosts, domains
_PATH_ID = r"^(\d+|[0-9a-fA-F-]{8,}|[A-Za-z]+[-_][0-9a-fA-F]{6,}|[^/]*\d[^/]*\d[^/]*\d[^/]*)$"


# (mask name, regex), applied in this order; a match becomes `<name>`. Drain's masking
# instructions (`TemplateState.masking`) are these, recorded in each fitted spec.
MESSAGE_MASKS: tuple[tuple[str, str], ...] = (
    ("str", _QUOTED),
    ("uuid", _UUID),
    ("ip", _IPV4),
    ("name", _DOTTED_NAME),
    ("hex", _HEX),
    ("num", _NUMBER),
)


def masked(expr: pl.Expr, masks: tuple[tuple[str, str], ...] = MESSAGE_MASKS) -> pl.Expr:
    """Text with every match of each (name, regex) of `masks`, in order, replaced by `<name>`."""
    for name, pattern in masks:
        expr = expr.str.replace_all(pattern, f"<{name}>")
    return expr


def message_template(expr: pl.Expr) -> pl.Expr:
    """`Slow checkout processing: 4602ms` → `Slow checkout processing: <num>ms`;
    `Session refreshed for david.hall` → `Session refreshed for <name>`."""
    return masked(expr, MESSAGE_MASKS)


def url_template(expr: pl.Expr) -> pl.Expr:
    """`/api/users/327?x=1` → `/api/users/<id>`: numeric, hex, uuid and digit-rich segments."""
    path = expr.str.split("?").list.first()
    segments = path.str.split("/").list.eval(
        pl.when(pl.element().str.contains(_PATH_ID)).then(pl.lit("<id>")).otherwise(pl.element())
    )
    return segments.list.join("/")


def ipv4_subnet(expr: pl.Expr) -> pl.Expr:
    """`10.1.2.3` → `10.1.2.0/24`; other address forms pass through unchanged."""
    prefix = expr.str.extract(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    return pl.when(prefix.is_not_null()).then(prefix + ".0/24").otherwise(expr)


def user_agent_product(expr: pl.Expr) -> pl.Expr:
    """`python-requests/2.31.0` → `python-requests`; `Mozilla/5.0 (X11...)` → `Mozilla`."""
    return expr.str.strip_chars().str.extract(r"^([^/\s]+)", 1)


NORMALISERS = {
    "message": message_template,
    "url": url_template,
    "ip": ipv4_subnet,
    "user_agent": user_agent_product,
    "json_array": lambda text: text,
}


def name_normaliser(name: str) -> str | None:
    """The normaliser an OCSF attribute name calls for, or None when the name says nothing
    (the fit then decides from the values: URL paths are recognised by a leading "/")."""
    lowered = name.lower()
    if lowered == "message" or lowered.endswith(("_message", "_msg")):
        return "message"
    if "user_agent" in lowered or lowered.endswith("user-agent"):
        return "user_agent"
    if lowered == "ip" or lowered.endswith("_ip"):
        return "ip"
    if lowered.endswith("path") or "url" in lowered:
        return "url"
    return None


def normalised(name: str, normaliser: str | None, templates: TemplateState | None = None) -> pl.Expr:
    """The column as text, passed through its normaliser when it has one.

    Integer-valued numbers used as categories (status codes, enum ids) print without
    a fraction, so 200 and 200.0 from two producers are the same category.

    A "message" column with `templates` (the Drain state of its CategoricalFeature) is
    masked with the state's masks and mapped to its Drain template; a message that
    matches no template stays its masked text, which is never a template (so never in a
    vocabulary of templates). Without `templates` ("message" specs fitted before Drain, or
    explanations showing an event's own text) the masked text is the value.
    """
    if normaliser == "message" and templates is not None:
        text = pl.col(name).cast(pl.String)
        return drain_templates(masked(text, templates.masks), templates)
    if normaliser == "integer":
        number = pl.col(name).cast(pl.Float64, strict=False).round(0)
        return number.cast(pl.Int64, strict=False).cast(pl.String)
    text = pl.col(name).cast(pl.String)
    return NORMALISERS[normaliser](text) if normaliser else text
