"""The one evaluation both sides get: masked-LM loss per predicted token of a Hugging Face folder
(AutoModelForMaskedLM, no custom code) on the held-out masked rows."""
import inspect

import numpy as np


def mlm_loss(model_dir, rows: dict, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats) over the rows' labelled positions; eval mode (no dropout), fp32."""
    import torch
    from transformers import AutoModelForMaskedLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters   # ModernBERT has none
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows["input_ids"]), batch_size):
            ids = torch.from_numpy(np.asarray(rows["input_ids"][start:start + batch_size], "i8"))
            labels = torch.from_numpy(np.asarray(rows["labels"][start:start + batch_size], "i8"))
            extra = {"token_type_ids": torch.zeros_like(ids)} if takes_types else {}
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
            picked = labels != -100
            total += float(torch.nn.functional.cross_entropy(logits[picked], labels[picked], reduction="sum"))
            count += int(picked.sum())
    return total / count


def unigram_loss(train_ids: np.ndarray, rows: dict, vocab_size: int) -> float:
    """The plateau a model sits on before it uses context: cross-entropy of the training text's
    token frequencies (add-one smoothed) on the eval rows' labels."""
    counts = np.bincount(train_ids.ravel(), minlength=vocab_size).astype("f8") + 1.0
    logp = np.log(counts / counts.sum())
    labels = rows["labels"][rows["labels"] != -100]
    return float(-logp[labels].mean())
