"""docs/overview.md, docs/overview.svg and docs/model_spec.md name what the code names."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from h3spark.actors import control_topic, status_topic
from h3spark.actors._source import DEAD_LETTER_SUFFIX
from h3spark.config import KafkaChannelConfig
from h3spark.services import ServicesConfig
from h3spark.train.engines.spec import ACTIVATIONS, INIT_KINDS, LAYER_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _diagram():
    spec = importlib.util.spec_from_file_location("overview_diagram", DOCS / "overview_diagram.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_overview_names_the_topics_and_ports_of_the_code():
    text = (DOCS / "overview.md").read_text()
    for name in (control_topic("NETWORK"), status_topic("NETWORK"), "TOPIC" + DEAD_LETTER_SUFFIX,
                 KafkaChannelConfig.model_fields["topic"].default, "model.safetensors", "_manifest.json"):
        assert f"`{name}`" in text, name
    config = ServicesConfig()
    for port in (config.kafka_port, config.spark_port, config.hdfs_port, config.hdfs_http_port, config.postgres_port):
        assert str(port) in text


def test_the_svg_is_drawn_from_the_script_as_it_is():
    svg = (DOCS / "overview.svg").read_text().replace("\u00a0", " ")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for _, _, _, _, _, title, subtitle, lines in _diagram().BOXES.values():
        for line in (title, subtitle, *lines):
            escaped = line.strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped in svg, f"docs/overview.svg lacks {line!r}: run .venv/bin/python docs/overview_diagram.py"


def _row(text: str, kind: str) -> str:
    match = re.search(rf"^\| `{kind}` \|.*$", text, re.M)
    assert match, f"docs/model_spec.md has no row for layer type {kind}"
    return match.group(0)


def test_the_model_spec_doc_lists_every_layer_option_and_default():
    text = (DOCS / "model_spec.md").read_text()
    for kind, options in LAYER_OPTIONS.items():
        row = _row(text, kind)
        for option, default in options.items():
            assert f"`{option}" in row, f"{kind}.{option}"
            if default is not None and not isinstance(default, bool):
                assert f"`{option}: {default}`" in row, f"{kind}.{option} default {default}"
    for name in (*INIT_KINDS, *ACTIVATIONS):
        assert f"`{name}`" in text


def test_the_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    for doc in ("overview.md", "config_reference.md", "cluster.md", "model_spec.md"):
        assert f"(docs/{doc})" in readme, doc


def _resolves(path: str) -> bool:
    """True when ``path`` (``section.key.key``; ``NAME`` and ``*`` for free names) is a key of the config models."""
    from h3spark.config import H3SparkConfig
    from h3spark.config._reference import _models_in, _type_name

    model, parts = H3SparkConfig, path.split(".")
    while parts:
        part = parts.pop(0)
        if part == "*":
            return True
        info = model.model_fields.get(part)
        if info is None:
            return False
        children, kind = _models_in(info.annotation), _type_name(info.annotation)
        if not children:
            return not parts or kind.startswith("dict[")  # below a plain dict any key is the user's
        if kind.startswith("dict[") and parts:
            parts.pop(0)  # the entry's name
        model = children[0]
    return True


def _flat_keys(value, prefix: str = "") -> list[str]:
    if not isinstance(value, dict):
        return [prefix[:-1]]
    if prefix in ("spark.conf.", "source.options."):
        return [prefix[:-1]]
    return [key for name, item in value.items() for key in _flat_keys(item, f"{prefix}{name}.")]


def test_the_cluster_doc_names_only_keys_of_the_config_models():
    import yaml

    text = (DOCS / "cluster.md").read_text()
    sections = ("storage", "source", "dataset", "preprocess", "training", "experiment", "actors", "gates",
                "predict", "web")
    named = [key for key in re.findall(r"`([a-z_]+(?:\.[a-z_*]+)+)`", text)
             if key.split(".")[0] in sections or key in ("spark.master", "spark.conf")]
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    keys = named + [key for block in blocks for key in _flat_keys(block)]
    assert len(named) > 15 and len(blocks) >= 4
    assert [key for key in keys if not _resolves(key)] == []
    assert not _resolves("storage.namenode_url") and not _resolves("actors.actors.x.bootstrap")
