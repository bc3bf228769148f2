"""The full bench, for maintainers: `python -m helpers bench` (cli.py); notebook 10 is the learner's lab.

run.py runs the workloads (workloads.py, seeding.py, memory.py), each recording one tidy row
per measurement; report.py builds the tables, goals and plots from those rows; record.py
stores them as JSON.
"""
