"""Optional TensorBoard scalars beside the JSON-lines log (implementation.tensorboard).

Written through torch.utils.tensorboard, which needs the `tensorboard` package. The workflow does
not depend on it (it brings grpcio, protobuf and a web server, ~20 MB, for a viewer): without it
the run says so once and goes on with the JSON log, which the report stage plots anyway.
`pip install tensorboard`, then `tensorboard --logdir results/runs`.
"""


class TensorBoard:
    def __init__(self, folder, enabled: bool, resume_step: int, say):
        """enabled: the recipe asks for it and this is rank 0; resume_step: events at or after it
        that a killed attempt wrote are discarded (TensorBoard's purge_step), as the JSON log is cut."""
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            say("implementation.tensorboard: the tensorboard package is not installed (pip install tensorboard); "
                "writing the JSON-lines log only")
            return
        self.writer = SummaryWriter(str(folder), purge_step=resume_step or None)
        say(f"TensorBoard scalars -> {folder}")

    def scalars(self, prefix: str, step: int, **values) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
