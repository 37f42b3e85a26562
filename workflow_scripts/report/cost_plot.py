"""GLUE score against pretraining device-hours: our runs beside the published anchors, as a PNG.

Anchors (device-hours = devices x hours of pretraining; their devices differ, so the x axis
compares budgets, not hardware):
- BERT-base (Devlin et al. 2019, sec. A.2): 4 Cloud TPUs in Pod configuration, 16 TPU chips, 4 days;
  GLUE 79.6 (the paper's Table 1 average).
- ExtremeBERT-base (Pan et al. 2022): 8 RTX 3090 x 1.3 days; GLUE 81.1.
- MosaicBERT-base (Portes et al. 2023): 8 A100 x 1.13 h; GLUE dev 79.6.
"""
import io

ANCHORS = [  # (label, device-hours, GLUE average, where its label sits: offset in points, alignment)
    ("BERT-base, 16 TPU chips x 4 days", 16 * 4 * 24, 79.6, (-4, -14), "right"),
    ("ExtremeBERT-base, 8x RTX 3090 x 1.3 days", 8 * 1.3 * 24, 81.1, (0, 8), "center"),
    ("MosaicBERT-base, 8x A100 x 1.13 h (dev)", 8 * 1.13, 79.6, (-4, -14), "right"),
]


def png(runs: dict) -> bytes:
    """runs: {run: (pretraining device-hours, GLUE dev average)}; either may be None (not plotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, hours, score, offset, align in ANCHORS:
        ax.plot(hours, score, "s", color="0.45", ms=7)
        ax.annotate(label, (hours, score), textcoords="offset points", xytext=offset, ha=align, fontsize=7,
                    color="0.3")
    for k, (run, (hours, score)) in enumerate(runs.items()):
        if hours is None or score is None or hours <= 0:
            print(f"{run}: no device-hours or no GLUE score; not in the GLUE vs device-hours plot", flush=True)
            continue
        ax.plot(hours, score, "o", color=f"C{k % 10}", ms=8, label=run)
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.12)
    ax.set(xlabel="pretraining device-hours (devices x hours; log scale)", ylabel="GLUE average",
           title="GLUE vs pretraining budget (grey: published anchors)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return figure_png(fig)


def figure_png(fig) -> bytes:
    """A finished figure as PNG bytes (the report's plots: one size and resolution), closed after."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
