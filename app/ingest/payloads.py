"""A trigger's ``payload`` options applied to a body: XML, multipart, JSON fields.

:func:`parse_for_trigger` is what the ingest path and the execution both use to
read a body, so filters, rules and templates see one ``body``. Without options it
is :func:`app.ingest.inbound.parse_body`. With them:

* ``content_type`` replaces the request's content type for reading;
* ``xml``: a body whose media type names XML becomes ``{root: ...}``, elements as
  objects, attributes as ``-name``, text beside children as ``#text``, repeated
  elements as lists (the layout adnanh/webhook's hooks reference). Documents with
  a DOCTYPE are not expanded (entity tricks): they stay text;
* ``multipart``: ``multipart/form-data`` fields become an object; a file part is
  included only when it is JSON (``application/json`` or listed in
  ``json_fields``), parsed;
* ``form_payload: keep``: a form whose only field is ``payload`` stays a form;
* ``json_fields``: top-level string fields that hold JSON are replaced by it.
"""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from app import safe_json
from app.ingest.inbound import ParsedBody, parse_body
from app.triggers.response_schema import PayloadOptions


def _element(node: ElementTree.Element) -> Any:
    value: dict[str, Any] = {f"-{name}": text for name, text in node.attrib.items()}
    for child in node:
        item = _element(child)
        if child.tag in value:
            existing = value[child.tag]
            value[child.tag] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            value[child.tag] = item
    text = (node.text or "").strip()
    if not value:
        return text
    if text:
        value["#text"] = text
    return value


def parse_xml(body: bytes) -> dict[str, Any] | None:
    """The body as an object, or None when it is not well-formed XML (or has a DOCTYPE)."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DOCTYPE and ENTITY refused above
    except ElementTree.ParseError:
        return None
    return {root.tag: _element(root)}


def parse_multipart(body: bytes, content_type: str, json_fields: list[str]) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body (first value of a repeated name)."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    fields: dict[str, Any] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        if part.get_filename() is None:
            fields[name] = data.decode("utf-8", errors="replace")
        elif part.get_content_type() == "application/json" or name in json_fields:
            try:
                fields[name] = safe_json.loads(data)
            except ValueError:
                continue
    return fields


def _decode_json_fields(value: Any, names: list[str]) -> Any:
    if not isinstance(value, dict):
        return value
    decoded = dict(value)
    for name in names:
        text = decoded.get(name)
        if isinstance(text, str):
            try:
                decoded[name] = safe_json.loads(text)
            except ValueError:
                continue
    return decoded


def parse_for_trigger(
    body: bytes,
    content_type: str | None,
    options: PayloadOptions | None,
    *,
    require_json: bool = False,
) -> ParsedBody:
    """The body as this trigger reads it; raises InvalidJson like :func:`parse_body`."""
    if options is None:
        return parse_body(body, content_type, require_json=require_json)
    content_type = options.content_type or content_type
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    parsed: ParsedBody | None = None
    if options.xml and "xml" in media_type:
        tree = parse_xml(body)
        if tree is not None:
            parsed = ParsedBody("xml", tree)
    elif options.multipart and media_type == "multipart/form-data" and content_type:
        parsed = ParsedBody("multipart", parse_multipart(body, content_type, options.json_fields))
    elif options.form_payload == "keep" and media_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        parsed = ParsedBody("form", {k: v[0] if len(v) == 1 else v for k, v in fields.items()})
    if parsed is None:
        parsed = parse_body(body, content_type, require_json=require_json)
    if options.json_fields:
        parsed = ParsedBody(parsed.kind, _decode_json_fields(parsed.value, options.json_fields))
    return parsed
