"""Check results for CI systems: JUnit XML and GitHub Actions annotations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from effprof.analyse.outcome import UNJUDGED
from effprof.check.result import CheckResult
from effprof.render.escape import xml_text  # the one escaper for XML: a claim name from a check file may hold anything


def junit_xml(results: list[CheckResult]) -> str:
    """JUnit XML (one testcase per check; a failure element carries the message) for CI systems.

    A gate failure (fail, a regression, or inconclusive/uncertain not allowed) is a <failure>; an inconclusive verdict the
    check allows passes, with its reason in <system-out>.
    """
    failures = sum(r.failed for r in results)
    total = f"{sum(r.seconds for r in results):.3f}"
    suites = ET.Element("testsuites", name="effprof check", tests=str(len(results)), failures=str(failures), errors="0", time=total)
    suite = ET.SubElement(suites, "testsuite", name="effprof check", tests=str(len(results)), failures=str(failures),
                          errors="0", skipped="0", time=total)
    for r in results:
        attributes = {"classname": xml_text(f"effprof.check.{r.check.mechanism}"), "name": xml_text(r.check.label),
                      "time": f"{r.seconds:.3f}"}
        if r.check.file:
            attributes.update(file=xml_text(r.check.file), line=str(r.check.line))
        case = ET.SubElement(suite, "testcase", attributes)
        if r.failed:
            kind = "Regression" if r.regressions else r.verdict.capitalize() if r.verdict in UNJUDGED else "ClaimFailed"
            failure = ET.SubElement(case, "failure", message=xml_text(r.message), type=kind)
            failure.text = xml_text(r.message + (f"\nlocal slopes: {r.fit['local']}" if r.fit else "")
                                    + (f"\ndefined at {r.check.source}" if r.check.file else ""))
        elif r.notes or r.verdict in UNJUDGED:
            unjudged = [r.message] if r.verdict in UNJUDGED else []
            ET.SubElement(case, "system-out").text = xml_text("\n".join([*r.notes, *unjudged]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def github_annotations(results: list[CheckResult]) -> list[str]:
    """`::error` workflow commands for the failed checks (GitHub Actions shows them on the run and the diff)."""
    lines = []
    for r in results:
        if not r.failed:
            continue
        where = f",file={_escape(r.check.file, True)},line={r.check.line}" if r.check.file else ""
        lines.append(f"::error title=effprof check{where}::{_escape(r.message)}")
    return lines


def _escape(text: str, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_ else text
