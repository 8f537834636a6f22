"""Verifies the first DKIM signature of the message on stdin with dkimpy,
an implementation independent of tend's.

Usage: dkim_verify.py NAME RECORD < message.eml

NAME is where the public key is published (SELECTOR._domainkey.DOMAIN) and
RECORD the TXT record's value there (v=DKIM1; k=...; p=...); nothing is
looked up in DNS. Prints one JSON object: {"ok", "error", "h", "a", "d",
"s"}, with h the signed header names in lower case.
"""

import json
import logging
import sys

import dkim


class Errors(logging.Handler):
    """dkimpy says why a signature fails only in its debug log; the last
    few lines of it are the reason."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage()[:300])


def main():
    name, record = sys.argv[1], sys.argv[2]
    message = sys.stdin.buffer.read()

    def dnsfunc(asked, timeout=5):
        asked = asked.decode() if isinstance(asked, bytes) else asked
        if asked.rstrip(".").lower() == name.lower():
            return record.encode()
        return None

    errors = Errors()
    logger = logging.getLogger("dkim_verify")
    logger.addHandler(errors)
    logger.setLevel(logging.DEBUG)
    verifier = dkim.DKIM(message, logger=logger)
    try:
        ok = verifier.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        ok = False
        errors.messages.append(str(e))
    fields = {
        k.decode(): v.decode(errors="replace")
        for k, v in verifier.signature_fields.items()
    }
    signed = [h.strip().lower() for h in fields.get("h", "").split(":") if h.strip()]
    print(
        json.dumps(
            {
                "ok": bool(ok),
                "error": "" if ok else "; ".join(errors.messages[-3:]),
                "h": signed,
                "a": fields.get("a"),
                "d": fields.get("d"),
                "s": fields.get("s"),
            }
        )
    )


if __name__ == "__main__":
    main()
