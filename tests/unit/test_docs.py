"""The docs that are generated from code must match it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_config_docs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "configuration.md").read_text() == gen.render(), "run scripts/gen_config_docs.py"


def test_every_adversarial_module_is_listed_in_the_security_doc() -> None:
    """docs/security.md names each surface and the module that attacks it: a module added without
    its row (or a row whose module is gone) fails here."""
    doc = (ROOT / "docs" / "security.md").read_text()
    table = doc[doc.index("## Surfaces and their guards"):]
    modules = {p.name for p in (ROOT / "tests" / "adversarial").glob("test_*.py")}
    listed = set(re.findall(r"`(test_[a-z_]+\.py)`", table))
    assert modules - listed == set(), "adversarial modules missing from docs/security.md"
    assert listed - modules == set(), "docs/security.md lists adversarial modules that do not exist"
