"""Week-16 project templates: `effprof course WEEK --template > mine.py`, fill in the TODOs, then
`effprof course WEEK --check mine.py:build`. Each file states its shapes, equations and the weight convention."""
