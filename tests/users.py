"""Another OS user for the tests that must not run as root: a learner's laptop, Binder's jovyan.

As root, `ensure_user` makes a plain user with a home of its own (useradd) and `as_user`
runs a command as that user (runuser, no shell in between); as anyone else both use the
current user, who already is not root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_user(name: str) -> str:
    """`name`, created if missing, when we are root; else the current user."""
    if not is_root():
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    return name


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def give(path: Path, user: str) -> None:
    """Make `path` (a folder the test made) the user's, as a clone of theirs would be."""
    if is_root():
        entry = pwd.getpwnam(user)
        for folder, dirs, files in os.walk(path):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, entry.pw_uid, entry.pw_gid)


def as_user(user: str, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `user` in `cwd`, with a clean environment plus `env` (HOME and USER are the user's)."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home(user)), "USER": user, "LOGNAME": user,
            "LANG": "C.UTF-8"}
    environment = {**base, **(env or {})}
    if is_root():
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        argv = [runuser, "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items()), *argv]
        environment = {}
    return subprocess.run(list(argv), cwd=cwd, env=environment or None, capture_output=True, text=True,
                          timeout=timeout)
