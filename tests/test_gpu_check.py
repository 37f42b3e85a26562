"""benchmarks/gpu_check.py's CPU fallback: the same code paths the GPU check runs, at tiny sizes."""
import pytest
import torch

from benchmarks import gpu_check


def test_throughput_part_runs_both_models_and_counts_their_flops(capsys):
    sizes = dict(batch=2, seq=32, predictions=4, warmup=1, steps=1)
    ours = gpu_check.throughput("ours", "fp32", gpu_check.TINY, sizes, "cpu")
    peer = gpu_check.throughput("peer", "fp32", gpu_check.TINY, sizes, "cpu")
    assert ours["weights_finite"] and peer["weights_finite"] and ours["tokens_per_s"] > 0
    # The peer's dense head and full last layer cost more model FLOPs per token than our sparse ones.
    assert peer["tflops_per_s"] / peer["tokens_per_s"] > ours["tflops_per_s"] / ours["tokens_per_s"]
    assert 0 < ours["mfu"] < 1 and "probe" in ours["peak"]
    gpu_check.check_throughput(gpu_check.TINY, sizes, "cpu", ["fp32"])
    out = capsys.readouterr().out
    assert "RESULT fp32_tokens_per_s_ours_over_peer" in out and "RESULT fp32_mfu_ours" in out


@pytest.mark.workflow
def test_pretrain_resumed_after_sigterm_then_a_glue_trial(pretrain_shards, bert_tokenizer_dir, tmp_path, capsys):
    shards = tmp_path / "samples"
    for split in ("train", "valid"):
        (shards / split).mkdir(parents=True)
        for path in pretrain_shards[split]:
            (shards / split / path.name).symlink_to(path)
    gpu_check.main(["--shards", str(shards), "--tokenizer", str(bert_tokenizer_dir), "--out", str(tmp_path / "out"),
                    "--parts", "pretrain,finetune"])
    out = capsys.readouterr().out
    assert "RESULT pretrain_resumed_after_sigterm 1" in out and "RESULT finetune_trial_ran 1" in out, out


def test_sync_part_runs_our_micro_steps_and_is_skipped_without_cuda(capsys):
    sizes = dict(batch=3, seq=32, predictions=5)
    for kind in ("bert", "modernbert"):   # the loop's path: prefetch (host indices), to_device, forward, backward
        assert gpu_check.micro_steps(kind, gpu_check.TINY, sizes, "cpu", host_indices=True) is None
    batches = gpu_check.padded_batches(torch, 2, sizes, 30522, packed=True)
    assert (batches[0]["attention_mask"] == 0).any() and (batches[0]["masked_lm_positions"] == 0).any()
    assert batches[0]["document_ids"].max() == 1
    gpu_check.check_sync(gpu_check.TINY, sizes, "cpu")
    assert capsys.readouterr().out.startswith("sync: skipped (no CUDA here")
