"""Create the two generator scripts of a case directory from the templates: python new_case.py NAME..."""

import sys
from pathlib import Path

LIB = Path(__file__).resolve().parent

for name in sys.argv[1:]:
    d = LIB.parent / name
    d.mkdir(exist_ok=True)
    for half in ("keras", "torch"):
        text = (LIB / f"gen_{half}.py.tmpl").read_text().replace("{name}", name)
        (d / f"gen_{half}.py").write_text(text)
    if not (d / "case.py").exists():
        print(f"{d}/case.py is missing: write CASE = {{...}} (see casekit_common.load_case)")
