"""Print a Markdown table of every case: planted ids, architecture, optimizer, measured gaps (reads case.py, measured.json).

    python _lib/summary.py            (from models/cases/; imports neither framework)
"""

import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import casekit_common as ck  # noqa: E402

rows = []
for d in sorted(p for p in ck.CASES.iterdir() if (p / "case.py").exists()):
    case = ck.load_case(d)
    m = json.loads((d / "measured.json").read_text())
    e = json.loads((d / "expected.json").read_text())
    cls, kw, full = ck.keras_optimizer(case)
    arch = case["arch"] + ("" if case["data"] == ck.ARCH_DATA[case["arch"]] else f" ({case['data']})")
    opts = ",".join(k for k, v in case["opts"].items() if v and k not in ("cell",)) or ""
    if case["arch"] == "rnn":
        opts = case["opts"].get("cell", "lstm") + ("," + opts if opts else "")
    pre = f", pretrained {case['pretrain']}" if case["pretrain"] else ""
    neg = set(m.get("negligible", []))
    present = ", ".join(p + (" (negligible)" if p in neg else "") for p in e["present"]) or "—"
    rows.append(f"| `{d.name}` | {present} | {e['top'] or '—'} | {arch}{' [' + opts + ']' if opts else ''}{pre} | {cls} | "
                f"{m['final']['keras']:.4f} | {m['final']['torch']:.4f} | {m['final']['gap']:.4f} | {m['mean_gap']:.4f} | "
                f"{m['variants']['faithful']['mean_gap']:.1e} |")
print("| case | present (expected.json) | top | architecture | Keras optimizer | Keras final | torch final | final gap | mean gap | faithful mean gap |")
print("|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
