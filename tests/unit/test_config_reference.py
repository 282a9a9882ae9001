"""docs/config_reference.md is generated from the config models, and is current."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from h3spark.cli._main import main
from h3spark.config import REFERENCE_COMMAND, H3SparkConfig, StrictModel, config_reference

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "config_reference.md"


class _Leaf(StrictModel):
    """A leaf section."""

    size: int = Field(default=3, gt=0, description="how big | in units")


class _Tagged(StrictModel):
    kind: Literal["tagged"]
    rate: float = Field(ge=0, le=1)


class _Root(StrictModel):
    """The root."""

    name: str = Field(min_length=1)
    mode: Literal["a", "b"] = "a"
    leaves: dict[str, _Leaf] = Field(default_factory=dict)
    leaf: _Leaf | None = None
    steps: list[Annotated[Union[_Tagged], Field(discriminator="kind")]] = Field(default_factory=list)


def test_the_committed_reference_is_current():
    assert COMMITTED.read_text() == config_reference(), (
        f"docs/config_reference.md is out of date with the config models; run: .venv/bin/{REFERENCE_COMMAND}")


def test_every_top_level_section_and_key_is_in_the_reference():
    text = config_reference()
    for name in H3SparkConfig.model_fields:
        assert f"| `{name}` |" in text
        if name not in ("name", "workdir"):
            assert f"## `{name}`" in text, name


def test_a_model_reached_twice_is_described_once_and_linked():
    text = config_reference(_Root)
    assert text.count("## `leaves.NAME`") == 1 and "## `leaf`" not in text
    assert "| `leaf` | section \\| null | `null` | see [`leaves.NAME`](#leavesname) |" in text


def test_types_bounds_defaults_and_descriptions_are_rendered():
    text = config_reference(_Root)
    assert "| `name` | str (length >= 1) | required |  |" in text
    assert '| `mode` | "a" \\| "b" | `"a"` |  |' in text
    assert "| `size` | int (> 0) | `3` | how big \\| in units |" in text
    assert "## `steps[] (kind: tagged)`" in text and "| `rate` | float (>= 0, <= 1) | required |  |" in text
    assert "A leaf section." in text


def test_the_command_writes_the_reference(tmp_path, capsys):
    out = tmp_path / "reference.md"
    assert main(["config", "reference", "--out", str(out)]) == 0
    assert out.read_text() == config_reference()
    assert main(["config", "reference"]) == 0
    assert capsys.readouterr().out.endswith(config_reference())


def test_the_command_refuses_a_missing_folder_with_exit_2(tmp_path, capsys):
    assert main(["config", "reference", "--out", str(tmp_path / "missing" / "reference.md")]) == 2
    assert "folder" in capsys.readouterr().err and not (tmp_path / "missing").exists()
    assert main(["config"]) == 2


def test_the_command_refuses_a_folder_as_its_output_with_exit_2(tmp_path, capsys):
    assert main(["config", "reference", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "it is a folder" in err and "config_reference.md" in err and "Traceback" not in err
