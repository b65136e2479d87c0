"""Run the probe suite (tests/test_probes.py) and write its table to docs/probes.md: every bad
input or fault, whether the probe passed, and the one line mmfusion answered with.

    python benchmarks/probe_table.py [--out docs/probes.md] [-- extra pytest args]

The table is the suite's own record (pytest's JUnit XML with the answers the probes saw), so
the docs say what was run, not what was meant to happen.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

from mmfusion.evaluation.markdown import markdown_table

REPO = Path(__file__).resolve().parents[1]


def outcome(case: ET.Element) -> str:
    for tag, word in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "skipped")):
        found = case.find(tag)
        if found is not None:
            reason = (
                (found.get("message") or "").splitlines()[0][:120] if found.get("message") else ""
            )
            return f"{word} {reason}".strip()
    return "passed"


def rows(junit: Path) -> list[tuple[str, str, str, str]]:
    """(probe, outcome, seconds, answer) per test case of tests/test_probes.py in the report
    (of the probe suite alone, or of the whole suite)."""
    table = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if not case.get("classname", "").endswith("test_probes"):
            continue
        answers = [
            p.get("value", "")
            for p in case.iterfind("properties/property")
            if p.get("name") == "answer"
        ]
        table.append(
            (case.get("name", ""), outcome(case), f"{float(case.get('time', 0)):.1f}",
             " / ".join(answers))
        )  # fmt: skip
    return table


def write(table: list[tuple[str, str, str, str]], out: Path, command: str) -> None:
    passed = sum(r[1] == "passed" for r in table)
    lines = [
        "# Probe table: bad inputs and faults, and what each gets",
        "",
        f"Written by `{command}` on {date.today()}: {len(table)} probes, {passed} passed. "
        "Each asserts a non-zero exit (or the documented skip), no traceback, one line naming "
        "the culprit, and nothing written before lost (see [failing-fast.md](failing-fast.md)). "
        "The answer column is the line the probe saw (probes without one check exit codes, run "
        "states or files).",
        "",
        markdown_table(
            ["#", "probe", "result", "s", "answer"],
            [(i, f"`{name}`", *rest) for i, (name, *rest) in enumerate(table, 1)],
        ),
    ]
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "probes.md")
    parser.add_argument(
        "--from-junit", type=Path, help="a whole suite's JUnit XML instead of a new run"
    )
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    if args.from_junit:
        write(
            rows(args.from_junit),
            args.out,
            "pytest --junitxml=FILE; python benchmarks/probe_table.py --from-junit FILE",
        )
        print(f"wrote {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "probes.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   str(REPO / "tests" / "test_probes.py"), f"--junitxml={junit}",
                   "-o", "junit_family=xunit1", *args.pytest_args]  # fmt: skip
        status = subprocess.run(command, cwd=REPO).returncode
        write(rows(junit), args.out, "python benchmarks/probe_table.py")
    print(f"wrote {args.out}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
