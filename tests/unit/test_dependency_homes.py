"""Each heavy dependency has one home: torch, mxnet and tensorboardX are imported only there
(top-level or inside a function), and importing h3spark's packages imports none of them.

The feed adapters (feed/_torch.py, feed/_mxnet.py) are the framework's other import: feed sits
below train, so they cannot import through train/engines (tests/unit/test_structure.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "h3spark"

HOMES = {
    "torch": ("h3spark/train/engines/torch*.py", "h3spark/train/engines/_torch*.py", "h3spark/feed/_torch.py"),
    "mxnet": ("h3spark/train/engines/mxnet*.py", "h3spark/train/engines/_mxnet*.py", "h3spark/feed/_mxnet.py"),
    "tensorboardX": ("h3spark/train/_tensorboard.py",),
}


def imported_packages(source: str) -> set[str]:
    """Top-level names of every package ``source`` imports (``import a.b``, ``from a.b import c``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def misplaced_imports(files: dict[str, str]) -> list[str]:
    """``path imports package`` for each import of a heavy package outside its home."""
    wrong = []
    for path, source in sorted(files.items()):
        for package in sorted(imported_packages(source) & set(HOMES)):
            if not any(fnmatch(path, pattern) for pattern in HOMES[package]):
                wrong.append(f"{path} imports {package}; import it in its home {HOMES[package][0]}")
    return wrong


def test_heavy_packages_are_imported_only_in_their_homes():
    files = {path.relative_to(ROOT).as_posix(): path.read_text() for path in PACKAGE.rglob("*.py")}
    assert misplaced_imports(files) == []


def test_the_scan_finds_imports_outside_a_home_wherever_they_are():
    files = {"h3spark/tune/_x.py": "def f():\n    import torch.nn as nn\n",
             "h3spark/feed/_y.py": "from mxnet import gluon\n",
             "h3spark/train/engines/torch_models.py": "import torch\n",
             "h3spark/train/engines/mxnet.py": "from tensorboardX import SummaryWriter\nfrom safetensors.torch import load\n"}
    assert misplaced_imports(files) == [
        "h3spark/feed/_y.py imports mxnet; import it in its home h3spark/train/engines/mxnet*.py",
        "h3spark/train/engines/mxnet.py imports tensorboardX; import it in its home h3spark/train/_tensorboard.py",
        "h3spark/tune/_x.py imports torch; import it in its home h3spark/train/engines/torch*.py",
    ]


def test_importing_the_packages_imports_no_heavy_dependency():
    script = ("import sys, h3spark, h3spark.feed, h3spark.train, h3spark.tune, h3spark.train.engines.splits, "
              "h3spark.train.engines.torch_models, h3spark.train.engines.mxnet_models, h3spark.tune._models; "
              f"print(sorted(name for name in {sorted(HOMES)!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
