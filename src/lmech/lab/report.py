"""A self-contained HTML page per run: figures inline, the checks, the config, the references."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .store import load_run

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;font-size:.9rem}
th{background:#f4f4f4}.pass{color:#0a7d28;font-weight:600}.fail{color:#b00020;font-weight:600}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}img{max-width:100%}
.verdict{font-size:1.2rem;margin:1rem 0}
"""


def format_value(value: float) -> str:
    """A number to 4 significant digits, anything else HTML-escaped (report tables)."""
    return f"{value:.4g}" if isinstance(value, (int, float)) else html.escape(str(value))


def write_report(run_dir: Path | str) -> Path:
    """Render ``run_dir/report.html`` from the files in the run folder and return its path.

    Raises:
        StoreError: if ``run_dir`` is not a run folder.
    """
    run_dir = Path(run_dir)
    meta = load_run(run_dir)
    checks = meta["checks"]
    n_pass = sum(c["passed"] for c in checks)
    verdict = "PASS" if n_pass == len(checks) else "FAIL"
    rows = "".join(
        f"<tr><td>{html.escape(c['name'])}</td><td>{format_value(c['measured'])}</td><td>{format_value(c['predicted'])}</td>"
        f"<td>{html.escape(c['rule'])}</td><td class={'pass' if c['passed'] else 'fail'}>"
        f"{'pass' if c['passed'] else 'FAIL'}</td></tr>"
        for c in checks
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for p in sorted(run_dir.glob("*.png"))
    )
    summary = "".join(f"<tr><td>{html.escape(k)}</td><td>{format_value(v)}</td></tr>" for k, v in meta.get("summary", {}).items())
    refs = "".join(f"<li>{html.escape(r)}</li>" for r in meta.get("references", []))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(meta['law'])} · {html.escape(meta['run_id'])}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(meta.get('title', meta['law']))}</h1>
<p><code>{html.escape(meta['law'])}</code> · run <code>{html.escape(meta['run_id'])}</code> ·
preset {html.escape(str(meta.get('preset')))} · seed {html.escape(str(meta.get('seed')))} · {html.escape(meta['created'])}</p>
<p><em>{html.escape(meta.get('statement', ''))}</em></p>
<p class="verdict">Verdict: <span class={'pass' if verdict == 'PASS' else 'fail'}>{verdict}</span>
({n_pass} of {len(checks)} checks pass)</p>
{figures}
<h2>Checks</h2><table><tr><th>check</th><th>measured</th><th>predicted / bound</th><th>rule</th><th>result</th></tr>{rows}</table>
<h2>Summary</h2><table>{summary}</table>
<h2>Configuration</h2><pre>{html.escape(json.dumps(meta['config'], indent=2))}</pre>
<h2>Versions</h2><pre>{html.escape(json.dumps(meta.get('versions', {}), indent=2))}</pre>
<h2>References</h2><ul>{refs}</ul>
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page)
    return out
