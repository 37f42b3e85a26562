"""The schema accepts every shipped config, fills defaults, and rejects typos and wrong types in one line."""
import copy
from pathlib import Path

import pytest
import yaml

from workflow_scripts import config_checks
from workflow_scripts.glue import grid

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
SHIPPED = [REPO / "config" / "config.yaml", *sorted((REPO / "config" / "recipes").glob("*.yaml"))]


def load(path=REPO / "config" / "config.yaml"):
    return yaml.safe_load(Path(path).read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load(path)
    config_checks.validate(config, SCHEMA)
    # Defaults are filled in, so scripts can rely on every key being present.
    for run in config["runs"].values():
        assert set(run["implementation"]) >= {"micro_batch_size", "precision", "zero_stage", "gpus"}
    assert "seeds" in config["finetune"] and "grid" in config["finetune"]


def test_defaults_fill_nested_sections():
    config = load()
    del config["runs"]["demo"]["implementation"]
    config_checks.validate(config, SCHEMA)
    assert config["runs"]["demo"]["implementation"]["precision"] == "fp32"


def test_default_grid_is_extremeberts_156_trials_per_seed():
    config = load()
    del config["finetune"]["grid"]
    config_checks.validate(config, SCHEMA)
    g = config["finetune"]["grid"]
    counts = {t: len(grid.trials(g, [1], t)) for t in config["finetune"]["tasks"]}
    assert counts["MNLI"] == counts["QQP"] == counts["QNLI"] == 4
    assert counts["CoLA"] == 24
    assert sum(counts.values()) == 156


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["samples"].update(mask_lm_prob=0.2), "samples: unknown key 'mask_lm_prob'"),
    (lambda c: c["samples"].update(max_seq_length="long"), "samples.max_seq_length: 'long' is not of type 'integer'"),
    (lambda c: c["runs"]["demo"]["model"].update(layer_norm="middle"), "runs.demo.model.layer_norm"),
    (lambda c: c.update(glue={"source": "dir"}), "glue"),
    (lambda c: c["corpora"]["wiki"].pop("path"), "corpora.wiki"),
    (lambda c: c["finetune"].update(tasks=["COLA"]), "finetune.tasks.0"),
    (lambda c: c["runs"]["demo"].update(batch_size=33), "runs.demo.batch_size: 33 is not a multiple"),
    (lambda c: c["runs"]["demo"]["schedule"].update(by="step"), "runs.demo."),
    (lambda c: c["runs"]["demo"]["model"].update(embedding_size=64), "runs.demo.model.embedding_size"),
    (lambda c: c["samples"].update(max_seq_length=1024), "samples.max_seq_length: 1024 is longer than"),
    # Packed samples: the demo's bert run would attend across documents; NSP has no pairs to make.
    (lambda c: c["samples"].update(packing="documents"),
     "runs.demo.model.type bert would attend across the documents of a packed row: set samples.packing: segments"),
    (lambda c: c["samples"].update(packing="documents", nsp=True), "samples.nsp: true cannot go with samples.packing"),
    # STILTs fine-tunes MNLI first: its grid must come from somewhere, though `tasks` omits MNLI.
    (lambda c: c["finetune"].update(tasks=["RTE"], stilts=["RTE"],
                                    grid={"RTE": {"lr": [1e-4], "batch_size": [16], "epochs": [2]}}),
     "config key finetune.grid: no `default` entry and no entry for MNLI, which finetune.stilts (RTE)"),
])
def test_bad_config_names_the_key(edit, expected):
    config = copy.deepcopy(load())
    edit(config)
    with pytest.raises(config_checks.ConfigError) as err:
        config_checks.validate(config, SCHEMA)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_trial_names_round_trip():
    name = grid.trial_name(3e-5, 32, 3, 42)
    assert name == "lr3e-05_bs32_ep3_seed42"
    assert grid.parse_trial(name) == {"lr": 3e-5, "batch_size": 32, "epochs": 3, "seed": 42}
    with pytest.raises(ValueError):
        grid.parse_trial("lr_bs_ep")
