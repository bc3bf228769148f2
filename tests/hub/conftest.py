"""The hub test is `.ci/run`'s own stage (COURSE_HUB_TEST=1 pytest tests/hub), never part of `make test`."""

import os

collect_ignore_glob = [] if os.environ.get("COURSE_HUB_TEST") else ["test_*.py"]
