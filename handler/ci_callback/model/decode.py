"""Turn raw callback bytes into a plain document (dicts, lists, strings), safely.

XML goes through xmltodict on expat with entity declarations refused, and any DTD
is rejected before the parser sees it. The content type is sniffed from the first
significant byte, because the Content-Type header is only a hint and sometimes lies.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.parsers.expat import ExpatError

from ..errors import InvalidCallback

XML = "xml"
JSON = "json"

_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_LEADING = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def sniff(body: bytes, content_type: str | None = None) -> str:
    """Return ``"xml"`` or ``"json"`` from the body itself; the header only breaks ties."""
    head = body[len(_BOM):] if body.startswith(_BOM) else body
    head = head.lstrip(_LEADING)[:1]
    if head == b"<":
        return XML
    if head in (b"{", b"["):
        return JSON
    if not head:
        raise InvalidCallback("empty body")
    hint = (content_type or "").lower()
    if "json" in hint or "xml" in hint:
        raise InvalidCallback(f"body does not look like the {'JSON' if 'json' in hint else 'XML'} its Content-Type claims")
    raise InvalidCallback("body is neither XML nor JSON")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k, depth + 1) or _has_lone_surrogate(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v, depth + 1) for v in value)
    return False


def decode_json(body: bytes) -> Any:
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidCallback("JSON body is nested too deeply") from None
    except UnicodeDecodeError:
        raise InvalidCallback("JSON body is not valid UTF-8") from None
    except ValueError as exc:
        raise InvalidCallback(f"malformed JSON: {exc}") from None
    # "\ud800" escapes decode to strings no object key or log line can carry. Paired
    # escapes (emoji) are fine; only check when an escape is there at all.
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(document):
        raise InvalidCallback("JSON body contains a lone UTF-16 surrogate escape")
    return document


def _xml_parse(body: bytes) -> Any:
    import xmltodict  # imported on first XML body only

    # strip_whitespace=False: object keys may begin or end with spaces, and must round-trip.
    return xmltodict.parse(body, disable_entities=True, strip_whitespace=False)


def decode_xml(body: bytes) -> Any:
    if _DTD.search(body):
        raise InvalidCallback("XML with a DTD or entity declarations is refused")
    try:
        return _xml_parse(body)
    except ExpatError as exc:
        # One documented sample has no single root element: wrap it once and retry.
        if "junk after document element" in str(exc):
            inner = _DECLARATION.sub(b"", body, count=1)
            try:
                return _xml_parse(b"<Response>" + inner + b"</Response>")
            except (ExpatError, ValueError):
                pass
        raise InvalidCallback(f"malformed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # "entities are disabled", bad or unknown encodings
        raise InvalidCallback(f"malformed XML: {exc}") from None


def decode_body(body: bytes | str, content_type: str | None = None) -> tuple[Any, str]:
    """Return ``(document, format)``; raise InvalidCallback when the body cannot be read."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidCallback("body must be bytes or str")
    body = bytes(body)
    kind = sniff(body, content_type)
    if kind == XML:
        return decode_xml(body), XML
    return decode_json(body), JSON
