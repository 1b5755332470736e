"""Packaging: the metadata this checkout builds, what its wheel and sdist hold, and a CHANGELOG
that matches `__version__`.

`.ci/run` builds the wheel and sdist once and passes their folder in `BSS_SAMPLER_DIST`; without
it the dist tests build their own (they need the `build` package, in the dev extra). `.ci/run`
then installs the wheel into a fresh environment and runs the core tests with
`BSS_SAMPLER_INSTALLED=1`, which makes `test_the_tested_package_is_the_installed_one` check that
they import the wheel's copy, not this checkout's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path

import pytest

import bss_sampler

ROOT = Path(__file__).resolve().parents[1]

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
URLS = ("Homepage", "Documentation", "Changelog", "Issues")
# Every module and data file of the package, as the wheel must hold them.
PACKAGE_FILES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in (ROOT / "bss_sampler").rglob("*")
    if path.suffix in (".py", ".typed") and "__pycache__" not in path.parts
)
# What a downstream packager rebuilds, tests and documents from.
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml")
SDIST_FOLDERS = ("tests", "docs", "examples", "benchmarks")


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
        "SMVSampler",
        "ScoredSampler",
        "__version__",
        "default_forward",
        "score_dataset",
    }
    from bss_sampler.functional import CRITERIA, balance_score  # noqa: F401
    from bss_sampler.ordering import shard, weighted_permutation  # noqa: F401
    from bss_sampler.pacing import PACING_FUNCTIONS, root_pacing  # noqa: F401
    from bss_sampler.samplers import HeuristicCurriculumSampler  # noqa: F401


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist: `.ci/run`'s (`BSS_SAMPLER_DIST`) or built here."""
    given = os.environ.get("BSS_SAMPLER_DIST")
    if given:
        out = Path(given)
    else:
        # minversion: a checkout's own `build/` folder imports as a namespace package
        pytest.importorskip("build", minversion="1.0", reason="needs the dev extra's `build`")
        pytest.importorskip("setuptools", minversion="77")
        out = tmp_path_factory.mktemp("dist")
        cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("bss_sampler-*.whl")
    (sdist,) = out.glob("bss_sampler-*.tar.gz")
    return wheel, sdist


def test_wheel_holds_the_package_and_nothing_else(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    assert wheel.name == f"bss_sampler-{bss_sampler.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"bss_sampler-{bss_sampler.__version__}.dist-info/"
    assert "bss_sampler/py.typed" in PACKAGE_FILES
    assert sorted(n for n in names if not n.startswith(dist_info)) == PACKAGE_FILES
    assert f"{dist_info}licenses/LICENSE" in names
    assert f"{dist_info}METADATA" in names


def test_sdist_holds_what_a_packager_needs(dists: tuple[Path, Path]) -> None:
    _, sdist = dists
    top = f"bss_sampler-{bss_sampler.__version__}/"
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(top) for name in archive.getnames()}
    for name in (*SDIST_FILES, *PACKAGE_FILES):
        assert name in names, f"the sdist lacks {name}"
    for folder in SDIST_FOLDERS:
        tracked = subprocess.run(
            ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.split()
        if not tracked:  # not a git checkout (e.g. the sdist itself): compare with the folder
            tracked = [
                p.relative_to(ROOT).as_posix()
                for p in (ROOT / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            ]
        assert tracked, folder
        missing = sorted(set(tracked) - names)
        assert missing == [], f"the sdist lacks {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith((".venv/", ".ci/", ".git/", "runs/"))]


def test_the_tested_package_is_the_installed_one() -> None:
    """Under `.ci/run`'s wheel stage, the tests import the installed wheel, not the checkout."""
    if not os.environ.get("BSS_SAMPLER_INSTALLED"):
        pytest.skip("runs where .ci/run tests the installed wheel (BSS_SAMPLER_INSTALLED=1)")
    where = Path(bss_sampler.__file__).resolve()
    assert where.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve()), where
    assert not where.is_relative_to(ROOT), where


@pytest.mark.parametrize(
    ("extra", "installs"),
    [
        ("transformers", {"transformers", "accelerate"}),
        ("text", {"bss-sampler[transformers]"}),  # the 0.1 name, an alias
        ("opencv", {"opencv-python-headless"}),
        ("video", {"bss-sampler[opencv]"}),  # the 0.1 name, an alias
        ("lightning", {"lightning"}),
        ("accelerate", {"accelerate"}),
        ("torchdata", {"torchdata"}),
        ("av", {"av", "soundfile", "pillow"}),  # PyAV, with the wav and JPEG writers it needs
    ],
)
def test_extras_are_named_after_what_they_install(
    metadata: Distribution, extra: str, installs: set[str]
) -> None:
    marker = f'extra == "{extra}"'
    requires = [r.split(";")[0].strip() for r in metadata.requires or [] if marker in r]
    assert {re.split(r"[<>=!~ ]", r, maxsplit=1)[0] for r in requires} == installs
