"""GLUE dev metrics in numpy (Matthews corr., accuracy, F1, Pearson, Spearman) and a task's GLUE score.

Functions return fractions (0-1, correlations -1..1); `task_metrics` reports them x100, the way
the GLUE leaderboard prints them. Degenerate inputs (a constant prediction) give 0.0 rather
than NaN, as sklearn does for MCC, so a collapsed model scores 0 and the JSON stays valid.
"""
import numpy as np


def accuracy(labels, preds) -> float:
    labels, preds = np.asarray(labels), np.asarray(preds)
    return float((labels == preds).mean())


def f1(labels, preds, positive=1) -> float:
    """F1 of the positive class (MRPC, QQP report it for label 1: paraphrase / duplicate)."""
    labels, preds = np.asarray(labels) == positive, np.asarray(preds) == positive
    tp = float((labels & preds).sum())
    denom = float(labels.sum() + preds.sum())
    return 2 * tp / denom if denom else 0.0


def matthews_corr(labels, preds) -> float:
    """Binary Matthews correlation: (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))."""
    labels, preds = np.asarray(labels) == 1, np.asarray(preds) == 1
    tp = float((labels & preds).sum())
    tn = float((~labels & ~preds).sum())
    fp = float((~labels & preds).sum())
    fn = float((labels & ~preds).sum())
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denom) if denom else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / denom) if denom else 0.0


def rank(x) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what Spearman's rho needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman(x, y) -> float:
    return pearson(rank(x), rank(y))


METRICS = {"mcc": matthews_corr, "accuracy": accuracy, "f1": f1, "pearson": pearson, "spearman": spearman}


def task_metrics(task, dev_results: dict) -> tuple:
    """(metrics x100, GLUE score) for one task from {dev split name: (labels, predictions)}.

    With two dev sets (MNLI) each metric gets the split's suffix: accuracy_matched, accuracy_mismatched.
    The score is the mean of all of them, as the GLUE leaderboard averages a task's metrics.
    """
    metrics = {}
    for split, (labels, preds) in dev_results.items():
        suffix = "" if len(dev_results) == 1 else "_" + split.removeprefix("dev_")
        for name in task.metrics:
            metrics[name + suffix] = 100.0 * METRICS[name](labels, preds)
    return metrics, float(np.mean(list(metrics.values())))
