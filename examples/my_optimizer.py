"""A user's optimizer for the pretraining rule: Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

Name it in a run's recipe by import path; nothing else changes:

    runs:
      lion:
        optimizer:
          name: examples.my_optimizer:Lion   # package.module:Class, importable from the workflow folder
          lr: 2.0e-4                         # Lion wants a 3-10x smaller LR than AdamW...
          weight_decay: 0.1                  # ...and a 3-10x larger decoupled weight decay
          kwargs: {betas: [0.9, 0.99]}       # any further constructor arguments

The pretraining script calls Lion(param_groups, lr=lr, **kwargs). Each parameter group carries
its own weight_decay (0.0 for biases and LayerNorm weights), and the LR schedule rewrites
group["lr"] before every step, so read both from the group at step time, as here.
"""
import torch


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0):
        if lr <= 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"Lion: bad lr {lr} or betas {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                p.mul_(1 - group["lr"] * group["weight_decay"])                       # decoupled decay
                update = m.mul(beta1).add_(p.grad, alpha=1 - beta1).sign_()           # sign of the interpolation
                p.add_(update, alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)                           # momentum tracks the gradient
        return loss
