"""The pieces of a self-contained HTML page: figures as PNG data URIs, tables, the page.

Nothing here reaches the network: styles are inline in the page, images are embedded
as ``data:image/png;base64,...`` and links only point inside the page. Figures are
``matplotlib.figure.Figure`` objects made without pyplot (:func:`new_figure`) and
rendered by Agg, so a report leaves no figure open and does not touch the backend a
notebook has chosen.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["figure_html", "new_figure", "page", "paragraph", "table"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
p.lead { background: #eef4fb; border-left: 4px solid #3b78c2; padding: 0.4em 0.8em; }
p.missing { color: #6b6b6b; font-style: italic; }
p.fail, li.fail { color: #a51d1d; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; }
tr.fail td { background: #fbe3e3; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
"""


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (5.0, 4.0)
               ) -> tuple[Any, Any]:
    """A figure outside pyplot, drawn by Agg, with a grid of axes: ``(figure, axes)``,
    axes 2-D."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def figure_html(fig: Any, alt: str, caption: str | None = None, dpi: int = 100) -> str:
    """``<figure>`` with the figure as an embedded PNG; the figure is closed after."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
    if caption:
        text += f"<figcaption>{html.escape(caption)}</figcaption>"
    return text + "</figure>"


def _close(fig: Any) -> None:
    """Release a figure: through pyplot when pyplot holds it, else by clearing it."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    number = getattr(fig, "number", None)
    if pyplot is not None and number is not None and number in pyplot.get_fignums():
        pyplot.close(fig)
    else:
        fig.clear()


def paragraph(text: str, kind: str | None = None) -> str:
    """``<p>`` with escaped text, of CSS class ``kind`` (``lead``, ``missing``, ``fail``)."""
    attribute = f' class="{kind}"' if kind else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
          text_columns: int = 1, row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned text."""
    def cell(tag: str, value: Any, index: int) -> str:
        kind = ' class="text"' if index < text_columns else ""
        return f"<{tag}{kind}>{html.escape(str(value))}</{tag}>"

    lines = ["<table>", "<tr>" + "".join(cell("th", h, i) for i, h in enumerate(header))
             + "</tr>"]
    for r, row in enumerate(rows):
        kind = row_classes[r] if row_classes and row_classes[r] else ""
        attribute = f' class="{kind}"' if kind else ""
        lines.append(f"<tr{attribute}>" + "".join(cell("td", v, i) for i, v in enumerate(row))
                     + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def page(title: str, intro: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole page: a title, an introduction (HTML), a contents list and sections.

    ``sections`` are ``(anchor, title, body HTML)``, numbered in order.
    """
    contents = "\n".join(f'<li><a href="#{anchor}">{html.escape(heading)}</a></li>'
                         for anchor, heading, _ in sections)
    body = "\n".join(
        f'<section id="{anchor}">\n<h2>{number}. {html.escape(heading)}</h2>\n{content}\n'
        f"</section>" for number, (anchor, heading, content) in enumerate(sections, 1))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{intro}\n<nav>\n<h2>Contents</h2>\n<ol>\n"
            f"{contents}\n</ol>\n</nav>\n{body}\n</body>\n</html>\n")
