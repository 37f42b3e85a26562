"""Read the next micro-batches on a background thread while the current one computes.

Shard decoding (HDF5 slices, numpy gathers) happens on the host; left in the loop it leaves a
GPU idle between micro-batches. A thread runs the epoch's generator (batches.TrainStream.epoch)
`depth` batches ahead, counts each batch's tokens and predictions on the host (so the loop never
asks the device for them), adds the model's host indices (factory.Built.host_indices: index tensors
whose sizes depend on the data, and ints such as the longest document, so the forward never asks
the device for them either), and pins the tensors on CUDA so the copy to the GPU is asynchronous.

The order of batches is the generator's, so a run reads exactly what it read without the thread
and resumes exactly. What the generator updates as it goes (the stream's documents_seen) runs
ahead with the thread, so each Item carries its value as of that batch.
"""
import queue
import threading
from dataclasses import dataclass

_END = object()


@dataclass
class Item:
    batch: dict              # the model's keyword arguments (CPU tensors, pinned on CUDA; ints stay ints)
    samples: int             # rows
    tokens: int              # non-padding tokens
    predictions: int         # real masked positions (masked_lm_positions > 0; 0 pads)
    documents_seen: int | None


def pinned(batch: dict) -> dict:
    """The batch's tensors in page-locked memory (asynchronous copies to the GPU); other values as they are."""
    return {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in batch.items()}


class Prefetch:
    """Iterate the items of `batches` (a generator of CPU batches) read `depth` ahead on a thread;
    host_indices (batch -> extra entries, or None) runs there on each batch."""

    def __init__(self, batches, stream, pin: bool, depth: int = 2, host_indices=None):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(batches, stream, pin, host_indices), daemon=True)
        self._thread.start()

    def _fill(self, batches, stream, pin: bool, host_indices) -> None:
        try:
            for batch in batches:
                if host_indices is not None:
                    batch = {**batch, **host_indices(batch)}
                item = Item(pinned(batch) if pin else batch,
                            len(batch["input_ids"]), int(batch["attention_mask"].sum()),
                            int((batch["masked_lm_positions"] > 0).sum()), stream.documents_seen)
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:   # handed to the loop, which raises it there (a bad shard: BadInput)
            self._put(e)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (a run that ends mid-epoch leaves batches unread)."""
        self._stop.set()
        self._thread.join()
