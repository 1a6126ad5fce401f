"""Query strings without their values: one rule for spans and for access log lines.

Query strings carry model inputs (``GET /predict?age=...``) and tokens (``?token=...``); a trace
backend or a log store is no place for either, and the frameworks redact only a few known
credential keys. A key that looks like a parameter name (up to 64 of ``A-Z a-z 0-9 _ . - [ ]``)
stays, so a reader still sees which parameters a request had; every value, any other key and an
item without ``=`` (a bare token) become :data:`REDACTED`. At most :data:`MAX_QUERY_PARAMETERS`
are kept.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_plus

#: What stands for a query value, and for a key that does not look like a parameter name.
REDACTED: Final = "REDACTED"
#: Most query parameters kept; the rest are left out.
MAX_QUERY_PARAMETERS: Final = 32
_PARAMETER_NAME: Final = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")
# A request target's query inside a line: from "?" to the next space, quote or end.
_QUERY_IN_TEXT: Final = re.compile(r"\?([^\s\"']*)")


def redact_query(query: str) -> str:
    """``query`` (without its ``?``) with every value redacted, as the module says."""
    parameters: list[str] = []
    for item in query.split("&"):
        if not item:
            continue
        if len(parameters) == MAX_QUERY_PARAMETERS:
            break
        key, equals, _ = item.partition("=")
        name = unquote_plus(key) if equals else ""
        if _PARAMETER_NAME.fullmatch(name) is None:
            name = REDACTED
        parameters.append(f"{name}={REDACTED}" if equals else REDACTED)
    return "&".join(parameters)


def redact_queries_in(text: str) -> str:
    """``text`` (an access log line, a request target) with each ``?query`` redacted."""
    if "?" not in text:
        return text
    return _QUERY_IN_TEXT.sub(lambda match: "?" + redact_query(match.group(1)), text)
