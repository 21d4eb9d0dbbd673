"""The analyse stage (no torch): records in, a Session out — everything a renderer shows, computed once.

    frames.py         records as a DataFrame: ok rows, the swept axis, series labels, varying keys
    points.py         repeated records of one point shown once (medians, pooled samples, a count)
    fit.py            scaling exponents with intervals and the per-fit verdict rule (`judge`)
    fit_breakdown.py  per-submodule exponents from records measured with --breakdown
    outcome.py        a claim's outcome and the gate: the one rule compare, report, check and assert_scaling apply
    session.py        `analyse(records) -> Session`: fits, noise marking, crossovers, complexity, baseline diff
    session_schema.py the checks a saved session file must pass before it is loaded

ARCHITECTURE.md § Code map.
"""
