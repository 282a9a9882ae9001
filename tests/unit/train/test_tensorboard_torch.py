"""TensorBoard logging does not import torch into a process that does not use it (2-10 s per MXNet rank 0)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from h3spark.train._tensorboard import _NoTorchForTypeHints


def test_a_summary_writer_leaves_torch_unloaded_and_torch_still_imports_afterwards(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from h3spark.train._tensorboard import summary_writer
        writer = summary_writer({str(tmp_path)!r})
        writer.add_scalar("loss", 0.5, 1)
        writer.close()
        loaded = "torch" in sys.modules
        try:
            import torch  # noqa: F401
            print(loaded, "torch imports")
        except ImportError:
            print(loaded, "torch is not installed")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "False", "the summary writer imported torch"
    assert list(tmp_path.iterdir()), "no event file was written"


def test_only_tensorboardx_writers_own_top_level_import_of_torch_is_refused():
    finder = _NoTorchForTypeHints()
    assert finder.find_spec("torch") is None  # any other importer: left to the usual finders
    assert finder.find_spec("numpy") is None
    namespace = {"__name__": "tensorboardX.writer", "finder": finder}
    exec(compile("try:\n    finder.find_spec('torch')\n    refused = False\nexcept ModuleNotFoundError:\n    refused = True\n"
                 "def later():\n    return finder.find_spec('torch')\n", "<tensorboardX.writer>", "exec"), namespace)
    assert namespace["refused"] is True
    assert namespace["later"]() is None  # its functions import torch where they need it
