"""Packaging: the metadata this checkout builds, and a CHANGELOG that matches `__version__`."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path

import pytest

import bss_sampler

ROOT = Path(__file__).resolve().parents[1]

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
URLS = ("Homepage", "Documentation", "Changelog", "Issues")


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    """The core metadata that building this checkout's pyproject.toml produces.

    Built here rather than read from the installed distribution: an editable install keeps the
    metadata of the pyproject.toml it was installed from.
    """
    pytest.importorskip("setuptools", minversion="77")  # the build-system requirement
    out = tmp_path_factory.mktemp("metadata")
    code = "import sys; from setuptools import build_meta as b; b.prepare_metadata_for_build_wheel(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (dist_info,) = out.glob("*.dist-info")
    return PathDistribution(dist_info)


def test_version_is_the_package_version(metadata: Distribution) -> None:
    assert metadata.version == bss_sampler.__version__


def test_classifiers(metadata: Distribution) -> None:
    classifiers = metadata.metadata.get_all("Classifier") or []
    for python in PYTHONS:
        assert f"Programming Language :: Python :: {python}" in classifiers
    for expected in (
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Typing :: Typed",
    ):
        assert expected in classifiers
    # PEP 639: the SPDX expression replaces licence classifiers.
    assert metadata.metadata["License-Expression"] == "MIT"
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert "LICENSE" in (metadata.metadata.get_all("License-File") or [])


def test_project_urls(metadata: Distribution) -> None:
    urls = dict(u.split(", ", 1) for u in metadata.metadata.get_all("Project-URL") or [])
    assert sorted(urls) == sorted(URLS)
    for url in urls.values():
        assert url.startswith("https://github.com/bss-sampler/bss-sampler")


def test_test_extra_is_lighter_than_dev(metadata: Distribution) -> None:
    requires = metadata.requires or []
    test = [r.split(";")[0].strip() for r in requires if 'extra == "test"' in r]
    dev = [r.split(";")[0].strip() for r in requires if 'extra == "dev"' in r]
    assert any(r.startswith("pytest") for r in test)
    assert any(r.startswith("hypothesis") for r in test)
    for heavy in ("lightning", "transformers", "accelerate", "torchdata", "mkdocs"):
        assert not [r for r in test if heavy in r], f"the test extra pulls in {heavy}"
    # dev is the superset: it installs the test extra.
    assert any(r.startswith("bss-sampler[") and "test" in r for r in dev)


def test_changelog_has_the_version_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert sections[0] == "Unreleased"
    # The newest released section is the version the package reports.
    assert sections[1] == bss_sampler.__version__
    heading = re.search(rf"^## \[{re.escape(bss_sampler.__version__)}\](.*)$", changelog, re.M)
    assert heading is not None
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", heading.group(1)), heading.group(0)


def test_the_package_exports_what_users_touch() -> None:
    """Issue 18: a small surface; the rest stays importable from its module."""
    assert set(bss_sampler.__all__) == {
        "PRESETS",
        "BalanceReport",
        "BalanceScorer",
        "CoverageError",
        "HeuristicCurriculumSampler",
        "LearnedBalanceSampler",
        "Preset",
        "ScoredSampler",
        "__version__",
        "default_forward",
        "score_dataset",
    }
    from bss_sampler.functional import CRITERIA, balance_score  # noqa: F401
    from bss_sampler.ordering import shard, weighted_permutation  # noqa: F401
    from bss_sampler.pacing import PACING_FUNCTIONS, root_pacing  # noqa: F401
    from bss_sampler.samplers import HeuristicCurriculumSampler  # noqa: F401
