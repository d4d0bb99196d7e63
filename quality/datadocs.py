"""Data Docs that work offline: every CDN link of GX's pages pointed at the vendored copies.

GX 1.24's templates load Bootstrap, jQuery, Font Awesome, Vega and friends from CDNs, and its
navbar logo from S3 (with a timestamp query: a beacon). After each build, ``make_offline`` copies
the vendored files (``quality/docs_vendor``) into the site and rewrites each page's tags to relative
paths; the logo comes from the site's own static images. ``external_references`` lists anything a
browser would still fetch from outside (the tests require none).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from importlib import resources
from pathlib import Path

from quality.rules import RULES

# CDN URL -> (vendored folder, file inside it)
CDN_FILES: dict[str, tuple[str, str]] = {
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega@5.33.1", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite@5.23.0", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed@6.29.0", "build/vega-embed.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome_fontawesome-free@6.6.0",
        "css/all.min.css",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery@3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js@1.12.9",
        "dist/umd/popper.min.js",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap@4.3.1",
        "dist/js/bootstrap.min.js",
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap@4.3.1",
        "dist/css/bootstrap.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker@1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker@1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve_bootstrap-dark@1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
    ),
}
GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
VENDOR_DIR = "static/vendor"
_TAGS = {
    url: re.compile(r'<(script|link)\b[^>]*?(?:src|href)="' + re.escape(url) + r'"[^>]*>(?:\s*</script>)?')
    for url in CDN_FILES
}
_FETCHED = re.compile(r"""(?:\bsrc\s*=\s*|<link\b[^>]*\bhref\s*=\s*|url\()\s*["']?((?:https?:)?//[^"')\s>]+)""", re.I)


def _vendored() -> Path:
    return Path(str(resources.files("quality").joinpath("docs_vendor")))


def _tag(url: str, prefix: str) -> str:
    folder, path = CDN_FILES[url]
    local = f"{prefix}{VENDOR_DIR}/{folder}/{path}"
    return f'<script src="{local}"></script>' if path.endswith(".js") else f'<link rel="stylesheet" href="{local}">'


def rules_section() -> str:
    """The rules, their severities and suites, as an HTML section for the index page (people start there)."""
    rows = "".join(
        f"<tr><td>{r.number}</td><td>{html.escape(r.title)}</td><td>{r.severity}</td>"
        f'<td><a href="expectations/{r.suite}.html">{r.suite}</a></td></tr>'
        for r in RULES.values()
    )
    return (
        '<section id="mhhs-rules" class="container-fluid mt-4 mb-4"><h4>MHHS business rules</h4>'
        '<table class="table table-sm"><thead><tr><th>rule</th><th>what is checked</th><th>severity</th>'
        f"<th>suite</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def make_offline(site: Path) -> list[str]:
    """Vendor the assets into ``site``, rewrite every page, add the rules to the index; return what still points
    outside."""
    shutil.copytree(_vendored(), site / VENDOR_DIR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    for page in site.rglob("*.html"):
        depth = os.path.relpath(site, page.parent).replace(os.sep, "/")
        prefix = "" if depth == "." else depth + "/"
        text = page.read_text(encoding="utf-8")
        for url, pattern in _TAGS.items():
            text = pattern.sub(_tag(url, prefix).replace("\\", "\\\\"), text)
        logo = f"{prefix}static/images/logo-long.png"
        text = re.sub(re.escape(GX_ASSETS) + r"[A-Za-z0-9_.-]+\.png[^\"')\s]*", logo, text)
        # GX points validation pages' favicon one level too shallow
        text = re.sub(r'href="(?:\.\./)*static/images/favicon\.ico"', f'href="{prefix}static/images/favicon.ico"', text)
        if page == site / "index.html" and 'id="mhhs-rules"' not in text:
            text = text.replace("</body>", rules_section() + "</body>", 1)
        page.write_text(text, encoding="utf-8")
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        if GX_ASSETS in text:
            css.write_text(re.sub(re.escape(GX_ASSETS) + r"[A-Za-z0-9_.-]+\.png", "../images/logo-long.png", text))
    return external_references(site)


def external_references(site: Path) -> list[str]:
    """Every resource a page or stylesheet of ``site`` would fetch from another host (links to follow excluded)."""
    found = []
    for f in [*site.rglob("*.html"), *site.rglob("*.css")]:
        text = f.read_text(encoding="utf-8", errors="replace")
        found += [f"{f.relative_to(site)}: {m.group(1)}" for m in _FETCHED.finditer(text)]
    return found
