"""The roadmap as a runnable course (effprof course): one lab per week, and the week-16 projects checked.

    effprof course                      the weeks and their mechanisms
    effprof course 7                    run week 7's lab: measure, fit, print what to look at, write a page
    effprof course 7 --template         print the week's project template (copy it, fill the TODOs)
    effprof course 7 --check my.py:build    check your implementation against effprof's reference

Labs are data: effprof/course/weeks/weekNN.py (effprof.course.lab.Lab). They are measured with effprof's own
runner, fitted with effprof.analyse.fit and drawn with effprof.render: the course has no measuring path of its own.
"""

from __future__ import annotations

import importlib

from effprof.config import ConfigError

WEEK_MODULES = {4: "week04", 5: "week05", 6: "week06", 7: "week07", 8: "week08", 9: "week09", 10: "week10", 11: "week11",
                12: "week12", 13: "week13", 15: "week15"}


def weeks() -> list[int]:
    return list(WEEK_MODULES)


def get_lab(week: int):
    """The Lab of `week`; a week without one is a ConfigError naming the weeks that have one."""
    if week not in WEEK_MODULES:
        raise ConfigError(f"week {week} has no lab; accepted: {', '.join(map(str, WEEK_MODULES))}")
    return importlib.import_module(f"effprof.course.weeks.{WEEK_MODULES[week]}").LAB
