"""The maintainers' tools: re-executing notebooks in place, the static site and slides, the
performance lab (`bench`), and regenerating the pins (`lock`).  Nothing a notebook imports.
"""
