"""The report of scripts/study_robustness.py: means and spreads over seeds, drift beyond chance,
the verdicts, the markdown tables and the plot.

Split from the study at its seam: the study trains and measures runs, this turns
their rows into what a reader gets. Every function takes plain rows (dicts), so
the report can be remade from ``robustness.json`` without training anything.
"""

import statistics

from paracnn.runfolder import count
from paracnn.tools.extras import require

#: Seed 001's Table 1 as printed (its "noise" is pixel jitter): level -> (L2, rel. change, cosine).
SEED_001 = {
    "corrupt": {20: (13.990, 0.5478, 0.8474), 15: (13.500, 0.5173, 0.8585),
                10: (12.613, 0.4824, 0.8684), 5: (11.683, 0.4110, 0.9082)},
    "jitter": {20: (12.354, 0.4819, 0.8966), 15: (12.134, 0.4570, 0.9116),
               10: (10.930, 0.3904, 0.9350), 5: (8.755, 0.2985, 0.9526)},
}
SEED_001_NAME = {"jitter": "noise", "corrupt": "corrupt"}
#: the figures averaged over seeds, in the order of the tables.
FIGURES = ("epochs", "best_epoch", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
           "l2", "relative_change", "cosine")
#: drift beyond chance: the run's figure less the same seed's chance run's (for cosine, the
#: chance run's less the run's, so that more drift is a larger number for all three).
BEYOND = {"l2": 1, "relative_change": 1, "cosine": -1}
PLOT_WHAT = "study_robustness.py --plot"


# -- over seeds: means, spreads, drift beyond chance, verdicts ------------------------------

def aggregate(rows, seeds):
    """One dict per setting, in the order of the runs: ``{figure: (mean, std or None)}`` and more.

    ``beyond`` holds the drift beyond chance: per seed, the run's drift less the
    same seed's chance run's (:data:`BEYOND`), then its mean and spread.
    """
    names = list(dict.fromkeys(r["run"] for r in rows))
    by = {(r["seed"], r["run"]): r for r in rows}
    settings = []
    for name in names:
        mine = [by[(s, name)] for s in range(seeds)]
        kind, _, rest = name.partition("_")
        setting = {"run": name, "kind": kind, "level": _level(rest), "seeds": len(mine),
                   "seed_001": mine[0]["seed_001"],
                   **{f: spread([r[f] for r in mine]) for f in FIGURES}}
        if "chance" in names and kind in ("jitter", "corrupt"):
            setting["beyond"] = {f: spread([sign * (r[f] - by[(r["seed"], "chance")][f])
                                            for r in mine])
                                 for f, sign in BEYOND.items()}
        settings.append(setting)
    return settings


def spread(values):
    """``(mean, sample standard deviation)`` of ``values``; the deviation is None for one value,
    and both are None if a value is missing."""
    if not values or any(v is None for v in values):
        return (None, None)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def differs(a, b):
    """``(difference of means, spread, whether it exceeds the spread)`` of two (mean, std) pairs.

    The spread is the larger of the two between-seed standard deviations: a
    difference smaller than that is what changing the seed alone can do. With
    one seed there is no spread, and the answer is None.
    """
    diff = a[0] - b[0]
    stds = [s for s in (a[1], b[1]) if s is not None]
    if len(stds) < 2:
        return diff, None, None
    return diff, max(stds), abs(diff) > max(stds)


def judge(settings, levels):
    """The sentences: each perturbation against chance, label noise against jitter at each level,
    and the verdict the issue asks for."""
    by = {s["run"]: s for s in settings}
    lines = []
    chance = by.get("chance")
    for s in settings:
        if s["kind"] not in ("jitter", "corrupt") or chance is None:
            continue
        diff, sd, more = differs(s["l2"], chance["l2"])
        lines.append(f"{s['run']}: L2 {_pm(s['l2'], 3)} against chance's {_pm(chance['l2'], 3)}; "
                     f"{_exceeds(diff, sd, more)}.")
    tally = {"label noise": [], "jitter": [], "within": [], "unknown": []}
    for level in levels:
        noise, jitter = by[f"corrupt_{level:g}pct"], by[f"jitter_{level:g}pct"]
        diff, sd, more = differs(noise["l2"], jitter["l2"])
        lines.append(f"At {level:g} %, label noise moves the weights {'more' if diff > 0 else 'less'} "
                     f"than jitter (L2 {_pm(noise['l2'], 3)} against {_pm(jitter['l2'], 3)}); "
                     f"{_exceeds(diff, sd, more)}.")
        which = "unknown" if more is None else "within" if not more else (
            "label noise" if diff > 0 else "jitter")
        tally[which].append(f"{level:g} %")
    lines.append(verdict(tally, len(levels)))
    return lines


def verdict(tally, n):
    """The plain answer: does label noise move the weights more than jitter, beyond chance?

    ``tally`` maps ``label noise``, ``jitter`` (which moved them more by more than
    the spread), ``within`` and ``unknown`` (one seed) to the levels where it holds.
    """
    if len(tally["unknown"]) == n:
        return ("Verdict: with one seed there is no between-seed spread, so no difference can be "
                "told from chance; run with --seeds 3 or more.")
    # NOTE: both runs of a level are compared with the same seeds' clean runs, so what chance
    # adds to one it adds to the other: a difference beyond the spread is beyond chance too.
    if len(tally["label noise"]) == n:
        return ("Verdict: yes. Label noise moves the weights more than jitter at every level, by "
                "more than the between-seed spread.")
    parts = [f"{who} moves them more, beyond the spread, at {', '.join(tally[who])}"
             for who in ("label noise", "jitter") if tally[who]]
    if tally["within"]:
        parts.append(f"the two are within the spread of each other at {', '.join(tally['within'])}")
    return ("Verdict: no, label noise does not move the weights more than jitter beyond the "
            "between-seed spread at every level: " + "; ".join(parts) + ".")


def _exceeds(diff, sd, more):
    if more is None:
        return f"the difference is {diff:+.3f}, and one seed gives no spread to read it against"
    return (f"the difference, {diff:+.3f}, {'exceeds' if more else 'is within'} the between-seed "
            f"spread ({sd:.3f})")


# -- the report ----------------------------------------------------------------------------

def format_report(settings, verdicts, rows):
    """The study as markdown: the settings over seeds, drift beyond chance, the sentences, every run."""
    seeds = settings[0]["seeds"]
    parts = [f"Over {count(seeds, 'seed')}: mean ± standard deviation between seeds.", "",
             format_settings(settings)]
    beyond = [s for s in settings if "beyond" in s]
    if beyond:
        parts += ["", "Drift beyond chance: each run's less the same seed's chance run's.", "",
                  format_beyond(beyond)]
    parts += [""] + [f"- {line}" for line in verdicts] + ["", "Every run:", "", format_runs(rows)]
    return "\n".join(parts)


def format_settings(settings):
    """One row per setting, seed 001's Table 1 figures in the last column."""
    lines = ["| setting | seeds | epochs | best epoch | val acc. | val loss | test acc. | test loss "
             "| L2 | rel. change | cosine | seed 001 (L2 / rel. / cos.) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in settings:
        ref = SEED_001.get(s["kind"], {}).get(s["level"])
        seed = f"{s['seed_001']}: {ref[0]:.3f} / {ref[1]:.4f} / {ref[2]:.4f}" if ref else "-"
        lines.append(f"| {s['run']} | {s['seeds']} | {_pm(s['epochs'], 1)} | {_pm(s['best_epoch'], 1)} "
                     f"| {_cells(s)} | {seed} |")
    return "\n".join(lines)


def format_beyond(settings):
    lines = ["| setting | L2 beyond chance | rel. change beyond chance | cosine below chance's |",
             "|---|---:|---:|---:|"]
    for s in settings:
        b = s["beyond"]
        lines.append(f"| {s['run']} | {_pm(b['l2'], 3)} | {_pm(b['relative_change'], 4)} "
                     f"| {_pm(b['cosine'], 4)} |")
    return "\n".join(lines)


def format_runs(rows):
    lines = ["| seed | run | epochs | best epoch | val acc. | val loss | test acc. | test loss | L2 "
             "| rel. change | cosine | time | how |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        one = {figure: (r[figure], None) for figure in FIGURES}
        lines.append(f"| {r['seed']} | {r['run']} | {r['epochs']} | {r['best_epoch']} | {_cells(one)} "
                     f"| {r['seconds']:.0f} s | {r['how']} |")
    return "\n".join(lines)


def _cells(pairs):
    """The cells both tables share, from ``{figure: (mean, std or None)}``: accuracy, loss, drift."""
    return (f"{_pm(pairs['val_accuracy'], 2, 100, ' %')} | {_pm(pairs['val_loss'], 4)} "
            f"| {_pm(pairs['test_accuracy'], 2, 100, ' %')} | {_pm(pairs['test_loss'], 4)} "
            f"| {_pm(pairs['l2'], 3)} | {_pm(pairs['relative_change'], 4)} | {_pm(pairs['cosine'], 4)}")


def write_plot(settings, levels, path):
    """Drift (L2, relative change, cosine) against the level, mean ± between-seed std as error bars.

    Chance is a horizontal line with its spread as a band, and seed 001's Table 1 hollow markers.
    """
    Figure = require("matplotlib.figure", PLOT_WHAT).Figure  # NOTE: lazy: an optional extra
    by = {s["run"]: s for s in settings}
    titles = {"l2": "L2 distance", "relative_change": "relative change", "cosine": "cosine similarity"}
    fig = Figure(figsize=(13, 4))
    for k, (figure, title) in enumerate(titles.items()):
        ax = fig.add_subplot(1, 3, k + 1)
        for kind, label, colour in (("jitter", "pixel jitter", "tab:blue"),
                                    ("corrupt", "label noise", "tab:red")):
            pairs = [by[f"{kind}_{level:g}pct"][figure] for level in levels]
            ax.errorbar(levels, [m for m, _ in pairs], yerr=[sd or 0.0 for _, sd in pairs],
                        marker="o", capsize=4, color=colour, label=label)
            ref = [(level, SEED_001[kind][level][k]) for level in levels if level in SEED_001[kind]]
            if ref:
                ax.plot(*zip(*ref), linestyle="none", marker="s", markerfacecolor="none",
                        color=colour, label=f"{label}, seed 001")
        if "chance" in by:
            mean, sd = by["chance"][figure]
            ax.axhline(mean, color="grey", linestyle="--", label="chance")
            if sd:
                ax.axhspan(mean - sd, mean + sd, color="grey", alpha=0.2)
        ax.set_xlabel("perturbation level (%)")
        ax.set_title(title)
        ax.set_xticks(levels)
    fig.axes[0].legend(fontsize=8)
    seeds = settings[0]["seeds"]
    fig.suptitle(f"Weight drift from the clean model, mean ± std over {count(seeds, 'seed')}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _level(text):
    try:
        value = float(text[:-len("pct")])
    except ValueError:
        return None
    return int(value) if value == int(value) else value


def _pm(pair, digits, scale=1, suffix=""):
    """``14.682 ± 0.520`` (mean ± std), ``14.682`` for one seed, ``-`` when missing."""
    mean, sd = pair
    if mean is None:
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * sd:.{digits}f}" if sd is not None else "") + suffix
