"""No config value runs a command (issue 14): shell metacharacters in every string key that reaches a
shell line, checked three ways: each rule's shell line quotes what it pastes in, every command of the
dry-run plan is run through bash with a stand-in `python` that records its argv (the shell parsing an
injection would exploit, without the jobs), and the download, corpus and tokenizer jobs run for real.
Each payload would `touch` a canary file in the working folder; none may appear, and every job must
get the literal value."""
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.workflow import REPO, copy_repo, snakemake
from workflow_scripts import config_checks
from workflow_scripts.data.sources import download

CANARIES = ("PWNED_1", "PWNED_2", "PWNED_3")
# Single and double quotes (in pairs: a lone quote only makes a syntax error), $( ), backticks, ; and
# spaces: each part would touch a canary where a shell saw the value unquoted, or broke out of quotes
# (the substitutions come first: bash runs them even where the command they sit in then fails).
PAYLOAD = "a b'c'd\"e\"f$(touch PWNED_1)`touch PWNED_2`;touch PWNED_3"
# The params that are already shell words (json_arg, shell_flag, the integer-only launcher) and
# Snakemake's own integers: the only fields a shell line may paste in without `:q`.
PRE_QUOTED = {"params.source", "params.spec", "params.recipe", "params.glue", "params.hparams",
              "params.settings", "params.cache", "params.keep_model", "params.launcher", "params.card", "params.price", "params.tracking", "threads"}
SCHEMA = REPO / "config" / "schema.yaml"


def shell_lines(text: str):
    """The shell string of each rule in a .smk file (its adjacent string literals joined)."""
    for block in re.finditer(r"^( *)shell:\n((?:\1 +(?:#.*|\".*\")\n)+)", text, re.M):
        yield "".join(json.loads(s) for s in re.findall(r'^\s*(".*")\s*$', block[2], re.M))


def test_every_shell_field_is_quoted_or_already_shell_words():
    seen = 0
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for line in shell_lines(smk.read_text()):
            seen += 1
            for field in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", line):
                name, _, spec = field.partition(":")
                assert spec == "q" or (name in PRE_QUOTED and not spec), f"{smk.name}: {{{field}}} in {line!r}"
    assert seen >= 10


def test_url_file_names_are_sanitised_deterministically():
    url = "file:///data/" + PAYLOAD + ".xml.bz2"
    name = download.url_filename(url)
    assert name == download.url_filename(url) == "a b_c_d_e_f_touch PWNED_1_touch PWNED_2_touch PWNED_3.xml.bz2"
    assert re.fullmatch(download.FILENAME_PATTERN, name) and shlex.split(shlex.quote(name)) == [name]
    assert download.url_filename("https://h/dump;v2.xml.bz2") == "dump_v2.xml.bz2"  # a `;` is no URL parameter
    assert download.url_filename("https://h/%7Bx%7D%2A.txt") == "_x_.txt"  # no wildcards or globs in a path
    assert download.url_filename("https://h/..") == "download.." and download.url_filename("https://h/") == "download"
    assert download.url_filename("https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles.xml.bz2") \
        == "enwiki-latest-pages-articles.xml.bz2"


@pytest.mark.parametrize("where", ["corpora", "runs"])
def test_names_used_as_file_names_are_checked_at_parse_time(where):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config[where] = {PAYLOAD: next(iter(config[where].values()))}
    with pytest.raises(config_checks.ConfigError) as error:
        config_checks.validate(config, SCHEMA)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"config key {where}:") and "^[A-Za-z0-9][A-Za-z0-9_-]*$" in message


# Real Snakemake runs in a copy of the repo whose config puts the payload everywhere.


def _hostile_workdir(root: Path, resources: Path) -> tuple[Path, dict]:
    """A repo copy (its own resources/, so a download stays in it) whose config holds the payload
    in every string key that reaches a shell line; returns it and the literal values."""
    work = copy_repo(REPO, root / "work", resources)
    (work / "resources").unlink()
    (work / "resources").mkdir()
    for entry in ("enwiki-excerpt.xml.bz2", "bert-base-uncased"):
        (work / "resources" / entry).symlink_to(resources / entry)
    data = root / "my data 'quoted'"  # a legitimate folder name with a space and a quote
    (data / PAYLOAD).mkdir(parents=True)
    dump = data / PAYLOAD / (PAYLOAD + ".xml.bz2")
    shutil.copy(resources / "enwiki-excerpt.xml.bz2", dump)
    web = data / ("web " + PAYLOAD + ".xml.bz2")
    shutil.copy(resources / "enwiki-excerpt.xml.bz2", web)
    texts = data / ("texts " + PAYLOAD)
    texts.mkdir()
    (texts / "a.txt").write_text("One sentence of mine. And a second one here.\n\nAnother document, short but kept.\n")
    tokenizer = data / ("tokenizer " + PAYLOAD)
    shutil.copytree(resources / "bert-base-uncased", tokenizer)
    glue = data / ("glue " + PAYLOAD)
    shutil.copytree(REPO / "demo" / "glue_smoke", glue)
    values = {"local": str(dump), "url": "file://" + str(web), "texts": str(texts), "tokenizer": str(tokenizer),
              "glue": str(glue), "cache": str(data / ("cache " + PAYLOAD)), "hub": PAYLOAD}
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config["corpora"] = {
        "local": {"type": "wikipedia", "path": values["local"], "parts": 1},
        "web": {"type": "wikipedia", "path": values["url"], "parts": 1},
        "mine": {"type": "text", "path": values["texts"], "parts": 1, "text_column": PAYLOAD},
        "hub": {"type": "huggingface", "name": PAYLOAD, "config": PAYLOAD, "split": PAYLOAD, "text_column": PAYLOAD,
                "documents": {"by": "column", "column": PAYLOAD}},
    }
    config["tokenizer"] = {"pretrained": values["tokenizer"]}
    config["glue"] = {"source": "dir", "path": values["glue"]}
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work, values


def _no_canary(*folders):
    for folder in folders:
        found = [p for c in CANARIES for p in Path(folder).rglob(c)]
        assert not found, f"a payload ran: {found}"


def _replay(work: Path, proc, scratch: Path) -> list[list[str]]:
    """Run every shell command of a `-n -p` plan through bash, `python` being a stand-in that records
    its argv; returns the argv lists (each job's command line as the shell split it)."""
    commands = [line.removeprefix("Shell command: ") for line in proc.stdout.splitlines()
                if line.startswith("Shell command: ")]
    assert commands, proc.stdout[-2000:]
    bin_dir, record = scratch / "bin", scratch / "argv.jsonl"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                    f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    (bin_dir / "python").chmod(0o755)
    cwd, unbalanced = scratch / "cwd", []
    cwd.mkdir()
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:  # unbalanced quotes: a value broke out of its quoting
            words = []
            unbalanced.append(command)
        for i, word in enumerate(words[:-1]):
            if word in (">", "2>"):
                (cwd / words[i + 1]).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", "-c", command], cwd=cwd, env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                       capture_output=True, timeout=60)
    _no_canary(cwd, work)
    assert not unbalanced, unbalanced
    return [json.loads(line) for line in record.read_text().splitlines()]


def _jobs(argvs, module):
    """The argv (from the module on) of each recorded call of `python -m module`."""
    return [a[i + 1:] for a in argvs for i, w in enumerate(a) if w == "-m" and a[i + 1:i + 2] == [module]]


def _opt(argv, flag):
    return argv[argv.index(flag) + 1]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, resources):
    return _hostile_workdir(tmp_path_factory.mktemp("inject"), resources)


@pytest.mark.workflow
def test_dry_run_plan_passes_every_value_literally(hostile, tmp_path):
    work, values = hostile
    proc = snakemake(work, "-n", "-p", "--cores", "2")
    argvs = _replay(work, proc, tmp_path)
    sources = {json.loads(_opt(a, "--source"))["type"] + ":" + str(json.loads(_opt(a, "--source")).get("path")):
               json.loads(_opt(a, "--source")) for a in _jobs(argvs, "workflow_scripts.data.corpus")}
    local_copy = "resources/corpora/web/" + download.url_filename(values["url"])
    assert {f"wikipedia:{values['local']}", f"wikipedia:{local_copy}", f"text:{values['texts']}",
            "huggingface:None"} == set(sources)
    assert sources[f"text:{values['texts']}"]["text_column"] == PAYLOAD
    hub = sources["huggingface:None"]
    assert (hub["name"], hub["config"], hub["split"], hub["text_column"], hub["documents"]["column"]) == (PAYLOAD,) * 5
    [fetch] = _jobs(argvs, "workflow_scripts.data.sources.download")
    assert (_opt(fetch, "--url"), _opt(fetch, "--out")) == (values["url"], local_copy)
    [tokenizer] = _jobs(argvs, "workflow_scripts.data.tokenizer")
    assert json.loads(_opt(tokenizer, "--spec")) == {"pretrained": values["tokenizer"]}
    trials = _jobs(argvs, "workflow_scripts.glue.finetune")
    assert trials and all(json.loads(_opt(t, "--glue"))["path"] == values["glue"] for t in trials)
    assert _jobs(argvs, "workflow_scripts.pretrain.train") and _jobs(argvs, "workflow_scripts.report.make_report")


@pytest.mark.workflow
def test_hub_glue_name_and_cache_dir_reach_the_trials_literally(hostile, tmp_path):
    work, values = hostile
    edit = tmp_path / "hub.yaml"
    edit.write_text(yaml.safe_dump({"glue": {"source": "huggingface", "name": PAYLOAD, "cache_dir": values["cache"]}}))
    proc = snakemake(work, "-n", "-p", "--cores", "2", "--configfile", str(edit))
    trials = _jobs(_replay(work, proc, tmp_path), "workflow_scripts.glue.finetune")
    assert trials and all(_opt(t, "--cache-dir") == values["cache"] for t in trials)
    assert all(json.loads(_opt(t, "--glue"))["name"] == PAYLOAD for t in trials)


@pytest.mark.workflow
@pytest.mark.parametrize("where", ["corpora", "runs"])
def test_unsafe_names_stop_the_plan_in_one_line(hostile, tmp_path, where):
    work, _ = hostile
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    edit = tmp_path / "names.yaml"
    edit.write_text(yaml.safe_dump({where: {PAYLOAD: next(iter(config[where].values()))}}))
    proc = snakemake(work, "-n", "-p", "--cores", "2", "--configfile", str(edit), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text
    assert f"config key {where}: " in text and "^[A-Za-z0-9][A-Za-z0-9_-]*$" in text
    _no_canary(work)


@pytest.mark.workflow
def test_download_corpus_and_tokenizer_jobs_run_on_the_literal_paths(hostile):
    """Real jobs: the file:// URL is fetched to its sanitised name, the dump in a folder named with
    spaces, quotes and the payload is extracted, the text folder too, and the tokenizer copied."""
    work, values = hostile
    targets = ["results/text/local/stats.json", "results/text/web/stats.json", "results/text/mine/stats.json",
               "results/tokenizer"]
    snakemake(work, "--cores", "2", *targets)
    _no_canary(work, Path(values["local"]).parents[1])
    local_copy = work / "resources/corpora/web" / download.url_filename(values["url"])
    assert local_copy.read_bytes() == Path(values["url"].removeprefix("file://")).read_bytes()
    for corpus in ("local", "web", "mine"):
        assert (work / f"results/text/{corpus}/part_0.txt").stat().st_size > 0
    assert (work / "results/text/local/part_0.txt").read_text() == (work / "results/text/web/part_0.txt").read_text()
    assert "Another document" in (work / "results/text/mine/part_0.txt").read_text()
    assert {p.name for p in Path(values["tokenizer"]).iterdir()} <= {p.name for p in (work / "results/tokenizer").iterdir()}
