"""GLUE metrics against values worked out by hand (in the comments), and a task's score as the leaderboard averages it."""
import math

import pytest

from workflow_scripts.glue import tasks
from workflow_scripts.glue.metrics import accuracy, f1, matthews_corr, pearson, rank, spearman, task_metrics

LABELS = [1, 0, 1, 1, 0]
PREDS = [1, 1, 0, 1, 0]  # tp 2 (rows 0, 3), fp 1 (row 1), fn 1 (row 2), tn 1 (row 4)


def test_accuracy():
    assert accuracy(LABELS, PREDS) == pytest.approx(3 / 5)


def test_f1_of_the_positive_class():
    assert f1(LABELS, PREDS) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # 2tp / (2tp + fp + fn) = 4/6
    assert f1([0, 0], [0, 0]) == 0.0  # no positives anywhere


def test_matthews_corr():
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3*3*2*2) = 1/6
    assert matthews_corr(LABELS, PREDS) == pytest.approx(1 / 6)
    # tp 3, tn 3, fp 1, fn 1: (9 - 1) / sqrt(4^4) = 0.5
    assert matthews_corr([1, 1, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 1, 0]) == pytest.approx(0.5)
    assert matthews_corr([1, 0, 1], [0, 1, 0]) == pytest.approx(-1.0)
    assert matthews_corr([1, 0, 1], [1, 1, 1]) == 0.0  # one predicted class: 0, not NaN (as sklearn)


def test_pearson_and_spearman_with_ties():
    x, y = [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]
    # centred x: -2 -1 0 1 2; centred y: -2 0 1 0 1 -> 6 / sqrt(10 * 6)
    assert pearson(x, y) == pytest.approx(6 / math.sqrt(60))
    # ranks of y with ties averaged: 1, 2.5, 4.5, 2.5, 4.5 -> centred -2 -.5 1.5 -.5 1.5 -> 7 / sqrt(10 * 9)
    assert list(rank(y)) == [1, 2.5, 4.5, 2.5, 4.5]
    assert spearman(x, y) == pytest.approx(7 / math.sqrt(90))
    assert spearman([1, 2, 3], [10, 200, 3000]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3], [2, 2, 2]) == 0.0


def test_task_scores_average_metrics_x100():
    mrpc = tasks.TASKS["MRPC"]
    metrics, score = task_metrics(mrpc, {"dev": (LABELS, PREDS)})
    assert metrics == pytest.approx({"f1": 100 * 4 / 6, "accuracy": 60.0})
    assert score == pytest.approx((100 * 4 / 6 + 60) / 2)

    mnli = tasks.TASKS["MNLI"]
    metrics, score = task_metrics(mnli, {"dev_matched": ([0, 1, 2, 2], [0, 1, 2, 0]),
                                         "dev_mismatched": ([0, 1], [1, 1])})
    assert metrics == pytest.approx({"accuracy_matched": 75.0, "accuracy_mismatched": 50.0})
    assert score == pytest.approx(62.5)

    stsb = tasks.TASKS["STS-B"]
    metrics, score = task_metrics(stsb, {"dev": ([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])})
    assert set(metrics) == {"pearson", "spearman"}
    assert score == pytest.approx(50 * (6 / math.sqrt(60) + 7 / math.sqrt(90)))
