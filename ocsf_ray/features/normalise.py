"""Normalisers that turn free text and identifiers into low-cardinality OCSF values.

Every OCSF user needs these: a log message is only comparable across events once its
variable parts are masked, a URL path once the ids in it are, an IP once reduced to
its subnet, a user agent once reduced to its product. Each is a Polars expression,
chosen per column by OCSF attribute name or, for paths, by content.
"""

from __future__ import annotations

import polars as pl

_QUOTED = r"""'[^']*'|"[^"]*\""""
_UUID = r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
_IPV4 = r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"
_HEX = r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b"
_NUMBER = r"[-+]?\d+(\.\d+)?"
_DOTTED_NAME = r"\b[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+\b"  # user names, hosts, domains
_PATH_ID = r"^(\d+|[0-9a-fA-F-]{8,}|[A-Za-z]+[-_][0-9a-fA-F]{6,}|[^/]*\d[^/]*\d[^/]*\d[^/]*)$"


def message_template(expr: pl.Expr) -> pl.Expr:
    """`Slow checkout processing: 4602ms` → `Slow checkout processing: <num>ms`;
    `Session refreshed for david.hall` → `Session refreshed for <name>`."""
    return (
        expr.str.replace_all(_QUOTED, "<str>")
        .str.replace_all(_UUID, "<uuid>")
        .str.replace_all(_IPV4, "<ip>")
        .str.replace_all(_DOTTED_NAME, "<name>")
        .str.replace_all(_HEX, "<hex>")
        .str.replace_all(_NUMBER, "<num>")
    )


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


def normalised(name: str, normaliser: str | None) -> pl.Expr:
    """The column as text, passed through its normaliser when it has one.

    Integer-valued numbers used as categories (status codes, enum ids) print without
    a fraction, so 200 and 200.0 from two producers are the same category.
    """
    if normaliser == "integer":
        number = pl.col(name).cast(pl.Float64, strict=False).round(0)
        return number.cast(pl.Int64, strict=False).cast(pl.String)
    text = pl.col(name).cast(pl.String)
    return NORMALISERS[normaliser](text) if normaliser else text
