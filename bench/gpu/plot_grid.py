"""The TFLOP/s-against-seqlen panel plot of the peer benchmarks (bench/peers.py forward, bench_bwd.py backward)."""
import math
import os


def plot_tflops(rows, panel_of, title_of, series, ylabel, suptitle, path, cols=4, height=3.0):
    """One panel per distinct panel_of(row), sorted, titled title_of(key); one line per (row key, label, line
    style) in series, over the rows that have a value; seqlen on a log2 axis. Written as PNG with matplotlib;
    where matplotlib is missing (this CI machine, some GPU hosts) the same panels go to an SVG next to `path`
    (.svg), so a saved peers.json can be rendered anywhere (`bench/peers.py --render`). Returns the file written,
    or None when plotting failed (reported, never fatal)."""
    panels = sorted({panel_of(r) for r in rows})
    try:
        import matplotlib
    except ImportError:
        svg = os.path.splitext(path)[0] + ".svg"
        try:
            with open(svg, "w") as f:
                f.write(_svg(rows, panels, panel_of, title_of, series, ylabel, suptitle, cols))
            return svg
        except Exception as e:
            print("plot skipped:", e)
            return None
    try:
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
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
        return path
    except Exception as e:
        print("plot skipped:", e)
        return None


_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def _svg(rows, panels, panel_of, title_of, series, ylabel, suptitle, cols):
    """The panels as a standalone SVG: 360 x 250 px each, y from 0 to the panel's maximum, log2 seqlen ticks."""
    pw, ph, ml, mr, mt, mb = 360, 250, 52, 10, 24, 34
    ncol = max(1, min(cols, len(panels)))
    nrow = (len(panels) + ncol - 1) // ncol
    width, height = ncol * pw, nrow * ph + 50
    esc = lambda t: str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" font-size="14" text-anchor="middle">{esc(suptitle)}</text>']
    for i, label in enumerate(s[1] for s in series):  # legend
        x = 10 + 190 * i
        out.append(f'<line x1="{x}" y1="36" x2="{x + 20}" y2="36" stroke="{_COLORS[i % 5]}" stroke-width="2"/>'
                   f'<text x="{x + 25}" y="40" font-size="11">{esc(label)}</text>')
    for n, key in enumerate(panels):
        ox, oy = (n % ncol) * pw, 50 + (n // ncol) * ph
        sel = [r for r in rows if panel_of(r) == key]
        xs = sorted({r["seqlen"] for r in sel})
        ymax = max([r[k] for r in sel for k, _, _ in series if r.get(k) is not None] + [1.0])
        ytop = 10 ** math.floor(math.log10(ymax)) * math.ceil(ymax / 10 ** math.floor(math.log10(ymax)))
        lx = [math.log2(x) for x in xs]
        x0, x1 = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1
        px = lambda s: ox + ml + (math.log2(s) - x0) / (x1 - x0) * (pw - ml - mr)
        py = lambda v: oy + mt + (1 - v / ytop) * (ph - mt - mb)
        out.append(f'<text x="{ox + pw / 2}" y="{oy + 14}" font-size="12" text-anchor="middle">{esc(title_of(key))}</text>')
        out.append(f'<rect x="{ox + ml}" y="{oy + mt}" width="{pw - ml - mr}" height="{ph - mt - mb}" fill="none" stroke="#888"/>')
        for t in range(5):
            v = ytop * t / 4
            out.append(f'<line x1="{ox + ml}" y1="{py(v):.1f}" x2="{ox + pw - mr}" y2="{py(v):.1f}" stroke="#eee"/>'
                       f'<text x="{ox + ml - 4}" y="{py(v) + 4:.1f}" font-size="10" text-anchor="end">{v:g}</text>')
        for s in xs:
            lab = f"{s // 1024}k" if s >= 1024 else str(s)
            out.append(f'<text x="{px(s):.1f}" y="{oy + ph - mb + 14}" font-size="10" text-anchor="middle">{lab}</text>')
        out.append(f'<text x="{ox + 12}" y="{oy + ph / 2}" font-size="10" transform="rotate(-90 {ox + 12} {oy + ph / 2})"'
                   f' text-anchor="middle">{esc(ylabel)}</text>')
        for i, (k, _, _) in enumerate(series):
            pts = [(px(r["seqlen"]), py(r[k])) for r in sorted(sel, key=lambda r: r["seqlen"]) if r.get(k) is not None]
            if pts:
                c = _COLORS[i % 5]
                out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                           % (c, " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)))
                out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{c}"/>' for x, y in pts]
    out.append("</svg>")
    return "\n".join(out) + "\n"
