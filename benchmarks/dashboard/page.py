"""Build the dashboard page: template.html with the stylesheet, the scripts and the runs inlined.

Everything the page needs is in the one file: no URL is loaded (the page's Content-Security-Policy forbids
any), so it renders the same offline, from a CI artifact or an email. The runs go in as JSON inside a
`<script type="application/json">`; every `<`, `>` and `&` in it is written as a JSON escape, so no text in a
run (a model called `</script>`, say) can end that element or start markup.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimizer.benchmarks.run_report import RunReport

ASSETS = Path(__file__).resolve().parent
SCRIPTS = ("charts.js", "runs.js", "plots.js", "table.js", "dashboard.js")
"""Inlined in this order: each uses the ones before it."""
STYLESHEET = "dashboard.css"
TEMPLATE = "template.html"
DEFAULT_TITLE = "hwopt benchmarks"

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def render_dashboard(runs: Iterable[RunReport], *, title: str = DEFAULT_TITLE,
                     generated: datetime | None = None) -> str:
    """The dashboard page of `runs` (oldest first, as History.runs gives them) as one HTML string."""
    from optimizer import __version__

    generated = generated or datetime.now(UTC)
    values = {
        "title": html.escape(title),
        "version": html.escape(__version__),
        "generated": generated.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "css": _asset(STYLESHEET, closing="</style"),
        "script": "\n".join(f"// ---- {name} ----\n{_asset(name, closing='</script')}" for name in SCRIPTS),
        "runs": embed_json({"title": title, "runs": [run.to_dict() for run in runs]}),
    }
    # One pass over the template: text put in for one placeholder is never searched for another.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _asset(TEMPLATE))


def write_dashboard(runs: Iterable[RunReport], output_path: str | os.PathLike, *, title: str = DEFAULT_TITLE) -> Path:
    """Write the page atomically (a temporary file renamed into place) and return its path."""
    path = Path(output_path)
    page = render_dashboard(runs, title=title)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def embed_json(data: Any) -> str:
    """JSON safe to place inside a <script> element. Non-finite floats become null: JSON has no NaN."""
    text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: _JSON_ESCAPES[match.group(0)], text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _asset(name: str, *, closing: str | None = None) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    # The assets are ours, but one that contained its own closing tag would cut the page short: fail the build.
    if closing is not None and closing in text.lower():
        raise ValueError(f"dashboard asset {name} contains '{closing}', which would end its element early")
    return text
