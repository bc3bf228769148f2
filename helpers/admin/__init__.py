"""The operator's side: the embedded PostgreSQL server, the `course` command line and `doctor`.

Learners never import from here; the notebooks use the package's face (`from helpers import …`).
"""
