"""The operator's side: the `course` command line and `doctor` (the embedded server is `helpers.server`).

Learners never import from here; the notebooks use the package's face (`from helpers import …`).
"""
