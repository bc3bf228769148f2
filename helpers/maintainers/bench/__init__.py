"""The performance lab: `python -m helpers bench` (see cli.py)."""
