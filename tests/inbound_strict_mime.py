"""Reads raw messages with Python's own `email` package under its strict
policy, as an independent check that the inbound fixtures are well-formed
MIME and not only readable by tend's parser.

Usage: python3 inbound_strict_mime.py FILE.eml...

Prints one JSON object a line per file: {"file", "subject", "text"} with the
decoded subject and plain-text body, or {"file", "error"} naming what is
wrong. Exits 1 if any file is not well-formed.
"""

import email
import email.policy
import json
import sys


def problems_of(raw):
    """What is wrong with the message, or an empty list; and the message."""
    head = raw.split(b"\n\n", 1)[0]
    problems = []
    try:
        head.decode("ascii")
    except UnicodeDecodeError:
        problems.append("raw 8-bit bytes in the header section; encode them (RFC 2047)")
    try:
        # Raises on the first defect the parser meets.
        message = email.message_from_bytes(raw, policy=email.policy.strict)
        for part in message.walk():
            problems.extend(f"part {part.get_content_type()}: {d!r}" for d in part.defects)
            for name, value in part.items():
                problems.extend(f"header {name}: {d!r}" for d in getattr(value, "defects", ()))
            if not part.is_multipart():
                # Decodes the transfer encoding and the charset, or raises.
                part.get_content()
    except Exception as e:  # Any complaint of the parser is the answer.
        problems.append(f"{type(e).__name__}: {e}")
        message = None
    return problems, message


def main(paths):
    failed = False
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        problems, message = problems_of(raw)
        if problems:
            failed = True
            print(json.dumps({"file": path, "error": "; ".join(problems)}, ensure_ascii=False))
            continue
        plain = message.get_body(preferencelist=("plain",))
        print(
            json.dumps(
                {
                    "file": path,
                    "subject": str(message["subject"]),
                    "text": plain.get_content() if plain is not None else None,
                },
                ensure_ascii=False,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
