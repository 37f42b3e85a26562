"""Upload a run's model folder to the Hugging Face Hub (HfApi.upload_folder), its card refreshed
with the run's GLUE dev scores (each task's chosen trial) where it was fine-tuned.

    python -m workflow_scripts.report.publish --model results/runs/RUN/model --repo-id USER/NAME \
        --best results/runs/RUN/glue/*/best.json --receipt-out results/runs/RUN/published.json

Nothing is sent without a token (`hf auth login` or HF_TOKEN): that is one line, before any upload.
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.cli import one_line_errors
from workflow_scripts.errors import BadInput
from workflow_scripts.report import model_card


def glue_results(best_files) -> dict:
    """{task: {"score", "metrics"}} of each task's chosen trial, from the select rule's best.json files."""
    results = {}
    for path in best_files:
        best = json.loads(Path(path).read_text())
        chosen = next((t for t in best["trials"] if t.get("chosen")), None)
        if chosen is not None:
            results[best["task"]] = {"score": chosen["score"], "metrics": chosen["metrics"]}
    return results


def prepare(model_dir, best_files, staging) -> Path:
    """A copy of the model folder in `staging`, its card rewritten to list the GLUE dev scores:
    exactly what will be uploaded (the run's own folder is left as the pretrain rule wrote it)."""
    model_dir, staging = Path(model_dir), Path(staging)
    facts = model_card.facts_of(model_dir)
    if facts is None:
        raise BadInput(f"publish: {model_dir} has no model card of ours ({model_card.CARD}): rerun its pretraining")
    shutil.copytree(model_dir, staging, dirs_exist_ok=True)
    facts = {k: v for k, v in facts.items() if k != "finetuned_on"}
    model_card.write(staging, model_card.card(facts, glue_results(best_files)))
    return staging


def token() -> str:
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise BadInput("publish: no Hugging Face token: run `hf auth login` or set HF_TOKEN, then run again")
    return found


def upload(folder, repo_id: str, private: bool, hf_token: str) -> str:
    """Create the repo if needed and upload the folder; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=hf_token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                             commit_message="Upload model (extremebert-snakemake)")
    return str(getattr(info, "commit_url", info))


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="the run's model folder")
    parser.add_argument("--repo-id", required=True, help="USER/NAME or ORG/NAME on the Hub")
    parser.add_argument("--best", nargs="*", default=[], help="the run's glue/TASK/best.json files")
    parser.add_argument("--private", choices=["true", "false"], default="true", help="create the repo private")
    parser.add_argument("--receipt-out", required=True, type=Path, help="JSON written after the upload")
    args = parser.parse_args(argv)
    if "/" not in args.repo_id.strip("/"):
        raise BadInput(f"publish: repo id {args.repo_id!r} has no namespace: set publish.namespace in the config "
                       "to your Hub user or organisation")
    hf_token = token()                     # before any work: no token, nothing prepared or sent
    args.receipt_out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.receipt_out.parent, prefix=".publish-") as tmp:
        folder = prepare(args.model, args.best, Path(tmp) / "upload")
        url = upload(folder, args.repo_id, args.private == "true", hf_token)
    atomic.write_json(args.receipt_out, {"repo_id": args.repo_id, "commit": url,
                                         "files": sorted(p.name for p in args.model.iterdir())})
    print(f"publish: {args.model} -> {url}", flush=True)


if __name__ == "__main__":
    main()
