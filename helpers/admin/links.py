"""`course links`: the one-click links an instructor hands out, made for this course's repository.

- **Binder**: a mybinder.org link (and the README badge's Markdown) that builds the repository
  from `binder/` and opens a notebook in JupyterLab.
- **nbgitpuller**: a link to a class's JupyterHub that clones the repository into each
  learner's home on the first click and, on later clicks, pulls the course's updates without
  overwriting what the learner changed (nbgitpuller's merge rules).

Both need the repository's public address, which a clone does not always know: it is taken
from `--repo` or else from `git remote get-url origin`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..config import REPO_ROOT
from ..errors import ConfigError

BINDER = "https://mybinder.org"
BADGE = "https://mybinder.org/badge_logo.svg"
_GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:)(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class Links:
    binder: str
    badge: str
    nbgitpuller: str | None


def origin_url() -> str:
    """The clone's `origin` remote, or a ConfigError saying to pass --repo."""
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "remote", "get-url", "origin"], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        raise ConfigError("This clone has no `origin` remote, so the course's public address is unknown.",
                          "pass it: course links --repo https://github.com/OWNER/REPO")
    return done.stdout.strip()


def binder_link(repo: str, branch: str, notebook: str) -> str:
    urlpath = quote(f"lab/tree/notebooks/{notebook}", safe="")
    github = _GITHUB.match(repo)
    if github:
        return f"{BINDER}/v2/gh/{github['owner']}/{github['name']}/{quote(branch, safe='')}?urlpath={urlpath}"
    return f"{BINDER}/v2/git/{quote(repo, safe='')}/{quote(branch, safe='')}?urlpath={urlpath}"


def nbgitpuller_link(hub: str, repo: str, branch: str, notebook: str) -> str:
    """nbgitpuller clones into a folder named after the repository, in the learner's home."""
    folder = re.sub(r"\.git$", "", repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    query = urlencode({"repo": repo, "branch": branch, "urlpath": f"lab/tree/{folder}/notebooks/{notebook}"})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def links(repo: str | None, branch: str, notebook: str, hub: str | None) -> Links:
    repo = repo or origin_url()
    binder = binder_link(repo, branch, notebook)
    return Links(binder, f"[![Binder]({BADGE})]({binder})",
                 nbgitpuller_link(hub, repo, branch, notebook) if hub else None)
