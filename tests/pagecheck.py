"""A check of a report page, shared by the report and demo tests.

Imported as ``pagecheck`` (pytest puts ``tests/`` on the path).
"""

import base64
import binascii
import html.parser
import re

from bayesmix.report import SECTIONS

PNG = b"\x89PNG\r\n\x1a\n"


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.headings, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        self.links += [value or "" for name, value in attrs.items() if name in ("src", "href")]
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        self._in_h2 = self._in_h2 and tag != "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(re.sub(r"^\d+\.\s*", "", data.strip()))


def report_problems(text, titles=tuple(t for _, t in SECTIONS)):
    """Everything wrong with a report page: missing sections, images that are not
    embedded PNGs, references outside the page. Empty when the page is whole."""
    page = _Page()
    page.feed(text)
    problems = [f"no section '{t}'" for t in titles if t not in page.headings]
    if not page.images:
        problems.append("no image")
    prefix = "data:image/png;base64,"
    for i, src in enumerate(page.images):
        if not src.startswith(prefix):
            problems.append(f"image {i} is not an embedded PNG: {src[:40]!r}")
            continue
        try:
            data = base64.b64decode(src[len(prefix):], validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"image {i} is not valid base64")
            continue
        if len(data) < 200 or not data.startswith(PNG):
            problems.append(f"image {i} does not decode to a PNG")
    problems += [f"reference outside the page: {link[:60]!r}" for link in page.links
                 if re.match(r"\s*(https?:|//|file:)", link, re.I)]
    problems += [f"external reference in the text: {m.group(0)!r}" for m in
                 re.finditer(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//[^\"'\s>]*", text,
                             re.I)]
    problems += ["a script" for _ in re.finditer(r"<script", text, re.I)]
    problems += ["a CSS url()" for _ in re.finditer(r"url\(", text, re.I)]
    return problems


