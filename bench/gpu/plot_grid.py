"""The TFLOP/s-against-seqlen panel plot of the peer benchmarks (bench/peers.py forward, bench_bwd.py backward)."""
import os


def plot_tflops(rows, panel_of, title_of, series, ylabel, suptitle, path, cols=4, height=3.0):
    """One panel per distinct panel_of(row), sorted, titled title_of(key); one line per (row key, label, line
    style) in series, over the rows that have a value; seqlen on a log2 axis. Plotting is optional on the GPU
    machine, so a missing matplotlib (or any plot error) is reported and skipped."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        panels = sorted({panel_of(r) for r in rows})
        ncol = max(1, min(cols, len(panels)))
        nrow = (len(panels) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, height * nrow), squeeze=False)
        for ax, key in zip(axes.flat, panels):
            sel = [r for r in rows if panel_of(r) == key]
            for k, label, style in series:
                xs = [r["seqlen"] for r in sel if r.get(k) is not None]
                ax.plot(xs, [r[k] for r in sel if r.get(k) is not None], style, marker="o", label=label)
            ax.set_xscale("log", base=2)
            ax.set_title(title_of(key), fontsize=9)
            ax.set_ylabel(ylabel)
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(suptitle, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
    except Exception as e:
        print("plot skipped:", e)
    return os.path.exists(path)
