"""Parse one message with Python's email package (policy=default) and print it as JSON.

Usage: python_email_parse.py [FILE]   (default: the message on stdin)

An independent reading of what our MIME code produces: decoded headers, the MIME tree, each
leaf part's decoded bytes (base64 in the JSON) and text, plus wire-level checks on the raw bytes.
"""

import base64
import json
import re
import sys
from email import policy
from email.parser import BytesParser


def header_list(part):
    headers = []
    for name, value in part.items():
        try:
            text = str(value)
        except Exception as error:  # a header the policy cannot render is a finding, not a crash
            text = "<unrenderable: %s>" % error
        headers.append({"name": name, "value": text})
    return headers


def defects_of(part):
    names = [type(d).__name__ for d in part.defects]
    for _, value in part.items():
        names.extend(type(d).__name__ for d in getattr(value, "defects", ()))
    return names


def describe(part, leaves):
    """Appends leaf parts to leaves in order and returns the MIME tree as text, e.g. multipart/mixed(text/plain,image/png)."""
    content_type = part.get_content_type()
    if part.get_content_maintype() == "multipart":
        children = part.get_payload()
        if isinstance(children, list):
            return "%s(%s)" % (content_type, ",".join(describe(child, leaves) for child in children))
    entry = {
        "contentType": content_type,
        "filename": part.get_filename(),
        "charset": part.get_content_charset(),
        "disposition": part.get_content_disposition(),
        "transferEncoding": part.get("Content-Transfer-Encoding") and str(part.get("Content-Transfer-Encoding")),
        "headers": header_list(part),
        "defects": defects_of(part),
        "payloadBase64": "",
        "text": None,
    }
    payload = part.get_payload()
    if content_type == "message/rfc822" and isinstance(payload, list) and payload:
        entry["message"] = describe_message(payload[0])
    elif content_type == "message/delivery-status" and isinstance(payload, list):
        entry["statusGroups"] = [header_list(group) for group in payload]
    else:
        data = part.get_payload(decode=True) or b""
        entry["payloadBase64"] = base64.b64encode(data).decode("ascii")
        if part.get_content_maintype() == "text":
            try:
                entry["text"] = part.get_content()
            except Exception as error:
                entry["textError"] = "%s: %s" % (type(error).__name__, error)
    leaves.append(entry)
    return content_type


def describe_message(message):
    leaves = []
    structure = describe(message, leaves)
    return {
        "headers": header_list(message),
        "defects": defects_of(message),
        "structure": structure,
        "parts": leaves,
    }


def wire_checks(raw):
    lines = re.split(rb"\r\n|\r|\n", raw)
    return {
        "size": len(raw),
        "sevenBit": all(byte < 0x80 for byte in raw),
        "nulBytes": raw.count(b"\x00"),
        "maxLineLength": max((len(line) for line in lines), default=0),
        "bareLf": len(re.findall(rb"(?<!\r)\n", raw)),
        "bareCr": len(re.findall(rb"\r(?!\n)", raw)),
        "endsWithCrlf": raw.endswith(b"\r\n"),
    }


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], "rb") as f:
            raw = f.read()
    else:
        raw = sys.stdin.buffer.read()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    result = describe_message(message)
    result.update(wire_checks(raw))
    # ASCII JSON: safe whatever the locale, and lone surrogates from undecodable bytes survive.
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
