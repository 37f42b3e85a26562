"""The optimizer a recipe names: a built-in (adamw, adam, sgd) or a user's class by import path.

Either way it is a torch optimizer, handed to DeepSpeed as is (DeepSpeed then adds fp16/bf16
master weights, ZeRO partitioning and gradient clipping around it; no fused_adam JIT build).

    optimizer:
      name: adamw | adam | sgd | package.module:Class
      lr: 1.0e-3            # peak LR; the schedule scales it every step (sets group["lr"])
      weight_decay: 0.01    # per parameter group: none on biases and LayerNorm weights
      betas, eps            # adam / adamw only
      kwargs: {}            # any further constructor arguments (sgd: momentum, nesterov; yours: anything)

A user's class is called as Class(param_groups, lr=lr, **kwargs). Each group carries its own
"weight_decay" (0.0 for biases and LayerNorm weights), so the class should read
group["weight_decay"], as torch's optimizers do, and take lr from group["lr"] at each step.
"""
from workflow_scripts import user_code
from workflow_scripts.errors import BadInput

BUILT_IN = ("adamw", "adam", "sgd")


def check(opt: dict) -> str | None:
    """The first problem with an optimizer spec (without importing a user's module), or None."""
    name = opt.get("name", "adamw")
    if name not in BUILT_IN and not user_code.is_import_path(name):
        return f"optimizer.name: {name!r} is not one of {', '.join(BUILT_IN)} nor 'package.module:Class'"
    return None


def param_groups(model, weight_decay: float) -> list:
    """[decayed, not decayed]: biases and LayerNorm weights take no weight decay (BERT's convention),
    for every model family."""
    from torch import nn

    plain = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    plain |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) not in plain], "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) in plain], "weight_decay": 0.0}]


def make(param_groups: list, opt: dict, device: str):
    import torch

    problem = check(opt)
    if problem:
        raise BadInput(problem)
    name, lr, extra = opt["name"], opt["lr"], dict(opt.get("kwargs") or {})
    if name in ("adamw", "adam"):
        kwargs = dict(lr=lr, betas=tuple(opt["betas"]), eps=opt["eps"])
        if device.startswith("cuda"):
            kwargs["fused"] = True   # torch's own fused CUDA kernel: as fast as DeepSpeed's, nothing to compile
        # adam: L2 regularisation (decay added to the gradient), as the original BERT Adam did not decouple.
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    elif name == "sgd":
        kwargs = dict(lr=lr)
        cls = torch.optim.SGD
    else:
        cls = user_code.load(name, "optimizer.name")
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise BadInput(f"optimizer.name={name!r} is not a torch.optim.Optimizer subclass")
        kwargs = dict(lr=lr)
    try:
        return cls(param_groups, **kwargs, **extra)
    except TypeError as e:
        raise BadInput(f"optimizer.kwargs {extra}: {cls.__name__} does not accept them ({e})") from None
