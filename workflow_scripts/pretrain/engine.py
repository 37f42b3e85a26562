"""DeepSpeed, precision and distribution behind one small interface, so loop.py reads as a plain loop.

Works as one plain process (CPU or one GPU: we fill in the torch.distributed environment
ourselves) and as N ranks under torchrun / the deepspeed launcher / SLURM srun.
"""
import importlib
import logging
import os
import socket
from dataclasses import dataclass

from workflow_scripts.pretrain import ds_passthrough, optimizers
from workflow_scripts.errors import BadInput


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    local_world: int
    device: str          # "cpu" or "cuda:<local_rank>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_distributed(want_gpu: bool = True) -> Dist:
    """Initialise torch.distributed through DeepSpeed; returns this process's place in the job.
    want_gpu False (implementation.gpus 0) keeps a run on the CPU even where CUDA is visible:
    Snakemake does not assign GPUs to local jobs, so one that asked for none must not take one."""
    # A plain `python -m ...` run has no launcher: make it a world of one. A fresh free port,
    # so several single-process runs (Snakemake runs jobs in parallel) never collide.
    if "RANK" not in os.environ:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    # Idle OpenMP threads sleep instead of spinning. The CPU is often shared (Snakemake runs other
    # jobs beside us); with cores oversubscribed, spinning made CPU steps ~3x slower here. Read by
    # the OpenMP runtime when torch loads, so it must be set before the first `import torch`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    cuda = want_gpu and torch.cuda.is_available()
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")   # skips the accelerator probe and its warning
    import deepspeed
    from deepspeed.utils import logger as ds_logger

    ds_logger.setLevel(logging.WARNING)   # DeepSpeed prints its whole config at INFO; our log has it already
    # On CPU DeepSpeed would JIT-compile a shared-memory comm op (minutes); gloo is enough for us.
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
        # fp32 matmuls on TF32 tensor cores (Ampere and later; 8x an A100's plain fp32 rate): the
        # rounding of the products' inputs to 10 mantissa bits is far below BERT's training noise.
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    else:
        device = "cpu"
        # N ranks share the cores this job was given (Snakemake's threads arrive as OMP_NUM_THREADS,
        # SLURM's allocation as the CPU affinity); oversubscribing threads slows everyone down.
        cores = len(os.sched_getaffinity(0))
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            cores = min(cores, int(os.environ["OMP_NUM_THREADS"]) * local_world)
        torch.set_num_threads(max(1, cores // local_world))
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", verbose=False)
    return Dist(rank, world, local_rank, local_world, device)


def accumulation_steps(batch_size: int, micro_batch_size: int, world: int) -> int:
    per_pass = micro_batch_size * world
    if batch_size % per_pass:
        raise BadInput(f"batch_size={batch_size} is not a multiple of implementation.micro_batch_size "
                         f"({micro_batch_size}) x processes ({world}) = {per_pass}")
    return batch_size // per_pass


def ds_config(recipe: dict, world: int) -> dict:
    """The DeepSpeed config derived from our recipe (DeepSpeed never reads a file of its own)."""
    impl, opt = recipe["implementation"], recipe["optimizer"]
    cfg = {
        "train_batch_size": recipe["batch_size"],
        "train_micro_batch_size_per_gpu": impl["micro_batch_size"],
        "gradient_accumulation_steps": accumulation_steps(recipe["batch_size"], impl["micro_batch_size"], world),
        "gradient_clipping": opt["gradient_clipping"],
        "zero_optimization": {"stage": impl["zero_stage"]},
        # Our loop logs; DeepSpeed's own step printing would only interleave with it.
        "steps_per_print": 2 ** 31 - 1,
        "wall_clock_breakdown": False,
        # Its throughput timer (on by default, synchronized) waits for the device at every forward
        # and step, i.e. twice per micro-batch; our own log measures throughput (issue 13).
        "timers": {"throughput": {"enabled": False}},
    }
    if impl["precision"] == "fp16":
        # loss_scale 0 = dynamic loss scaling, starting at 2**16 and halving on overflow.
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16,
                       "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1}
    elif impl["precision"] == "bf16":
        cfg["bf16"] = {"enabled": True}
    user = impl.get("deepspeed") or {}
    problem = ds_passthrough.conflict(user)
    if problem:
        raise BadInput(f"recipe key {problem}")
    return ds_passthrough.merged(cfg, user)


def to_device(batch: dict, device: str) -> dict:
    """A batch's tensors on the device (asynchronous from pinned memory); its other entries (ints that
    models.*.host_indices computed on the host, such as modernbert's max_seqlen) as they are."""
    import torch

    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class Engine:
    """One model under DeepSpeed: forward/backward/step on micro-batches, checkpoints, collectives."""

    def __init__(self, model, param_groups, recipe: dict, dist: Dist):
        import deepspeed
        import torch
        from deepspeed.accelerator import get_accelerator

        self.dist = dist
        self.torch = torch
        precision = recipe["implementation"]["precision"]
        acc = get_accelerator()
        if precision == "fp16" and not dist.device.startswith("cuda"):
            raise BadInput("implementation.precision=fp16 needs a GPU (this machine has none): use fp32 or bf16")
        if precision == "bf16" and not acc.is_bf16_supported():
            raise BadInput("implementation.precision=bf16 is not supported on this device: use fp32 or fp16")
        self.config = ds_config(recipe, dist.world)
        optimizer = optimizers.make(param_groups, recipe["optimizer"], dist.device)
        self.ds, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=self.config)
        self.module = self.ds.module
        self.accumulation = self.config["gradient_accumulation_steps"]
        self._no_raise_at_min_scale()

    def _no_raise_at_min_scale(self) -> None:
        """ZeRO's fp16 loss scaler raises (killing the job, no checkpoint) on an overflow at the
        minimum scale; we rather skip such steps and let early_stopping.loss_scale_stuck_steps
        stop the run cleanly. A checkpoint load brings back a pickled scaler: call again after it."""
        scaler = getattr(self.optimizer, "loss_scaler", None)
        if scaler is not None and hasattr(scaler, "raise_error_at_min_scale"):
            scaler.raise_error_at_min_scale = False

    # ---- training ----
    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def to_device(self, batch: dict) -> dict:
        return to_device(batch, self.dist.device)

    def forward_backward(self, batch: dict):
        """Forward + backward of one micro-batch (gradients accumulate); returns the loss tensor."""
        if not self.module.training:
            self.ds.train()
        loss, _, _ = self.ds(**self.to_device(batch))
        self.ds.backward(loss)   # DeepSpeed divides by the accumulation steps
        return loss.detach()

    def step(self) -> None:
        """Call after every forward_backward: DeepSpeed steps the optimizer (and zeroes the grads)
        only at the accumulation boundary; between, it only counts micro-steps."""
        self.ds.step()

    def train_micro_batch(self, batch: dict):
        loss = self.forward_backward(batch)
        self.step()
        return loss

    def eval_batch(self, batch: dict):
        """(mlm_loss_sum, n_predictions, total_loss) on one micro-batch, no grad, dropout off; the
        sums stay device tensors (read once per validation, in its all-reduce)."""
        self.ds.eval()
        with self.torch.no_grad():
            loss, mlm_sum, n = self.ds(**self.to_device(batch))
        return mlm_sum.double(), n, loss.detach()

    def loss_scale_at_minimum(self) -> bool:
        """fp16 only: the dynamic loss scale sits at its floor (min_loss_scale); False otherwise."""
        fp16 = self.config.get("fp16")
        if not fp16:
            return False
        # Where DeepSpeed keeps it: FP16_Optimizer (ZeRO 0) in loss_scale_config, ZeRO 1-3 in loss_scaler.
        opt = self.optimizer
        for holder in (getattr(opt, "loss_scale_config", None), getattr(opt, "loss_scaler", None), opt):
            scale = getattr(holder, "cur_scale", None)
            if isinstance(scale, (int, float)):
                return scale <= fp16["min_loss_scale"]
        return False

    def device_name(self) -> str:
        """The GPU's name (what flops.GPU_PEAK_TFLOPS matches), or "cpu"."""
        if self.dist.device.startswith("cuda"):
            return self.torch.cuda.get_device_name(self.dist.device)
        return "cpu"

    # ---- collectives (every rank must call them, in the same order) ----
    def all_reduce(self, values: list, op: str = "sum") -> list:
        """Sum (or max) of numbers and 0-d tensors over the ranks, as floats: one collective and one
        read of the device, however many values (tensors stay on the device until then)."""
        import torch.distributed as td

        torch = self.torch
        t = torch.stack([v.to(self.dist.device, torch.float64) if isinstance(v, torch.Tensor)
                         else torch.tensor(float(v), dtype=torch.float64, device=self.dist.device) for v in values])
        if self.dist.world > 1:
            td.all_reduce(t, op=td.ReduceOp.MAX if op == "max" else td.ReduceOp.SUM)
        return t.tolist()

    def barrier(self) -> None:
        import torch.distributed as td

        if self.dist.world > 1:
            td.barrier()

    def synchronize(self) -> None:
        """Wait for queued GPU work, so a wall-clock reading covers it."""
        if self.dist.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    # ---- checkpoints ----
    def save(self, folder: str, tag: str, client_state: dict) -> None:
        """Model + optimizer (+ ZeRO partitions) via DeepSpeed, and this rank's RNG states beside them."""
        self.ds.save_checkpoint(folder, tag=tag, client_state=client_state, save_latest=False)
        rng = {"torch": self.torch.get_rng_state()}
        if self.dist.device.startswith("cuda"):
            rng["cuda"] = self.torch.cuda.get_rng_state()
        os.makedirs(os.path.join(folder, tag), exist_ok=True)   # ranks that saved nothing else have no folder yet
        self.torch.save(rng, os.path.join(folder, tag, f"rng_rank{self.dist.rank}.pt"))
        self.barrier()

    def load(self, folder: str, tag: str) -> dict:
        path, client_state = self.ds.load_checkpoint(folder, tag=tag, load_optimizer_states=True,
                                                     load_lr_scheduler_states=False)
        if path is None:
            raise BadInput(f"checkpoint {os.path.join(folder, tag)} could not be loaded")
        self._no_raise_at_min_scale()
        rng_file = os.path.join(folder, tag, f"rng_rank{self.dist.rank}.pt")
        if os.path.exists(rng_file):
            rng = self.torch.load(rng_file, weights_only=False)
            self.torch.set_rng_state(rng["torch"])
            if "cuda" in rng and self.dist.device.startswith("cuda"):
                self.torch.cuda.set_rng_state(rng["cuda"])
        return client_state

    def full_state_dict(self) -> dict | None:
        """The whole model's weights in fp32 on CPU, on rank 0 (None elsewhere). ZeRO-3 partitions
        parameters across ranks, so they are gathered first (a collective: call on every rank)."""
        import deepspeed

        params = list(self.module.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None,
                                               enabled=self.config["zero_optimization"]["stage"] == 3):
            if self.dist.rank != 0:
                return None
            return {k: v.detach().float().cpu().clone() for k, v in self.module.state_dict().items()}
