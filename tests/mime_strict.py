# Parses the message in argv[1] with Python's strict email policy (every
# defect an error), checks both parts of its multipart/alternative and that
# the HTML closes every element it opens; prints the text part.
import email, email.policy, sys
from html.parser import HTMLParser

raw = open(sys.argv[1], "rb").read()
for n, line in enumerate(raw.split(b"\r\n"), 1):
    assert len(line) <= 998, f"line {n} is longer than RFC 5322 allows"
    assert b"\n" not in line, f"line {n} ends in a bare LF"
msg = email.message_from_bytes(raw, policy=email.policy.strict)

def headers(part):
    # Header values are parsed (and their defects raised) when read.
    for name, value in part.items():
        str(value)
        assert not getattr(value, "defects", ()), f"{name}: {value.defects}"

headers(msg)
assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
parts = list(msg.iter_parts())
assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"], parts
for part in parts:
    headers(part)
    assert part.get_content_charset() == "utf-8", part.get_content_charset()
    assert not part.defects, part.defects
assert not msg.defects, msg.defects
text, html = (p.get_content() for p in parts)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
class Balance(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open = []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append((tag, self.getpos()))
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        assert self.open, f"</{tag}> at {self.getpos()} closes nothing"
        top, at = self.open.pop()
        assert top == tag, f"</{tag}> at {self.getpos()} closes <{top}> opened at {at}"
b = Balance()
b.feed(html)
b.close()
assert not b.open, f"never closed: {b.open}"
assert html.startswith("<!DOCTYPE html>"), html[:40]
sys.stdout.write(text)
