"""``RUN/report.html``: a run on one self-contained page, to share as a single file.

The page holds the config, the per-epoch metrics table, the notes ``plot``
printed and every figure, embedded as base64 PNG, so it opens anywhere
without the run folder.
"""

import base64
import html

from ..files import write_atomic

#: metrics.jsonl columns in the table, with their headings and formats.
COLUMNS = (("epoch", "epoch", "{}"), ("train_loss", "train loss", "{:.4f}"),
           ("train_accuracy", "train acc.", "{:.2%}"), ("val_loss", "val loss", "{:.4f}"),
           ("val_accuracy", "val acc.", "{:.2%}"), ("test_loss", "test loss", "{:.4f}"),
           ("test_accuracy", "test acc.", "{:.2%}"), ("lr", "learning rate", "{:.4g}"),
           ("samples_per_second", "samples/s", "{:.1f}"), ("seconds", "seconds", "{:.1f}"),
           ("workers", "workers", "{}"))

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.9em}
figure{margin:2em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;margin:.4em 0}
.note{background:#fff8e0;padding:.5em 1em;border-left:4px solid #e0b000}"""


def _cell(record, key, fmt):
    value = record.get(key)
    if value is None:
        return "<td>-</td>"
    try:
        return f"<td>{html.escape(fmt.format(value))}</td>"
    except (TypeError, ValueError):
        return f"<td>{html.escape(str(value))}</td>"


def metrics_table(epochs):
    """The per-epoch records as an HTML table of the columns present."""
    columns = [c for c in COLUMNS if any(c[0] in r for r in epochs)]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    rows = "".join("<tr>" + "".join(_cell(r, key, fmt) for key, _, fmt in columns) + "</tr>"
                   for r in epochs)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _config_text(run_dir, trained):
    saved = run_dir / "config.yaml"
    if saved.is_file():
        return saved.read_text(encoding="utf-8", errors="replace")
    return trained.config.to_yaml()


def write_report(path, *, run_dir, trained, epochs, figures, notes, test_accuracy):
    """Write the page to ``path`` (atomically)."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>paracnn run {e(run_dir.name)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>paracnn run <code>{e(str(run_dir))}</code></h1>",
             f"<p>Figures from checkpoint <code>{e(trained.path)}</code> (epoch {trained.epoch}, "
             f"step {trained.step:,}): {trained.model.num_params():,} parameters; test accuracy "
             f"{100 * test_accuracy:.2f} % with these weights.</p>"]
    parts += [f"<p class='note'>{e(note)}</p>" for note in notes]
    parts.append("<h2>Metrics per epoch</h2>")
    parts.append(metrics_table(epochs) if epochs else "<p>No epoch finished (no metrics.jsonl).</p>")
    parts.append("<h2>Figures</h2><ul>" + "".join(
        f"<li><a href='#fig{n}'>{e(f.title)}</a></li>" for n, f in enumerate(figures)) + "</ul>")
    for n, f in enumerate(figures):
        data = base64.b64encode(f.path.read_bytes()).decode("ascii")
        parts.append(f"<figure id='fig{n}'><h3>{e(f.title)}</h3><figcaption>{e(f.about)}</figcaption>"
                     f"<img alt='{e(f.title)}' src='data:image/png;base64,{data}'></figure>")
    parts.append(f"<h2>Config</h2><pre>{e(_config_text(run_dir, trained))}</pre></body></html>")
    write_atomic(path, "\n".join(parts))
