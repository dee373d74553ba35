"""Agreement and ranking statistics, as pure functions over plain Python values.

Nothing here touches the database: `annotation.stats` gathers annotations into the shapes below
and calls these. Every function answers `None` where its statistic is undefined (too little data,
or no variation to measure agreement against) rather than inventing a number.

Shapes:
- a *unit* is the list of values that different annotators gave one task (`None` = missing);
- *pairs* are two equal-length lists of values given by two annotators to the same tasks;
- *comparisons* are `(model_a, model_b, outcome)` with outcome `"a"`, `"b"` or `"tie"`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

import krippendorff
import numpy as np

RATING_DOMAIN = (1, 2, 3, 4, 5)


def _present(unit: Iterable) -> list:
    return [v for v in unit if v is not None]


def krippendorff_alpha_ordinal(units: Sequence[Sequence[int | None]], domain=RATING_DOMAIN) -> float | None:
    """Krippendorff's alpha with the ordinal difference function (the `krippendorff` package).

    Units with fewer than two values are not pairable and carry no weight, as in Krippendorff's
    definition. Answers None with no pairable unit or when every value given is the same (alpha is
    0/0 there: there is no variation to agree on).
    """
    pairable = [_present(u) for u in units]
    pairable = [u for u in pairable if len(u) >= 2]
    if not pairable:
        return None
    if len({v for u in pairable for v in u}) < 2:
        return None
    width = max(len(u) for u in pairable)
    # Alpha does not depend on who gave a value, only on which values share a unit, so rows are
    # slots, not annotators: a compact matrix however many annotators a project has.
    matrix = np.full((width, len(pairable)), np.nan)
    for col, unit in enumerate(pairable):
        matrix[: len(unit), col] = unit
    value = krippendorff.alpha(
        reliability_data=matrix, level_of_measurement="ordinal", value_domain=list(domain)
    )
    return None if math.isnan(value) else float(value)


def fleiss_kappa(units: Sequence[Sequence[Hashable | None]]) -> float | None:
    """Fleiss' kappa for categorical values (compare choices, class labels).

    Units may have different numbers of raters: each unit's agreement P_i uses its own n_i, and the
    category shares p_j pool every rating (the usual generalisation; it equals Fleiss' formula when
    every unit has the same n). Units with fewer than two ratings are left out. None when there is
    no such unit or when all ratings fall in one category (P_e = 1).
    """
    rated = [_present(u) for u in units]
    rated = [u for u in rated if len(u) >= 2]
    if not rated:
        return None
    totals: Counter = Counter()
    agreement = []
    for unit in rated:
        counts = Counter(unit)
        totals.update(counts)
        n = len(unit)
        agreement.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
    p_bar = sum(agreement) / len(agreement)
    all_ratings = sum(totals.values())
    p_e = sum((c / all_ratings) ** 2 for c in totals.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa for two annotators over the same tasks (paired lists, no missing values)."""
    if len(first) != len(second):
        raise ValueError("Cohen's kappa needs two lists of the same length.")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    left, right = Counter(first), Counter(second)
    expected = sum(left[c] * right[c] for c in left) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def cohen_kappa_pairs(by_task: dict[object, dict[object, Hashable]]) -> list[dict]:
    """Cohen's kappa for every pair of annotators, on the tasks both answered.

    `by_task` maps a task to {annotator: value}. Answers one row per pair that shares at least one
    task: {"annotators": (a, b), "kappa": float | None, "tasks": n}.
    """
    shared: dict[tuple, list[tuple]] = {}
    for answers in by_task.values():
        for a, b in combinations(sorted(answers, key=str), 2):
            shared.setdefault((a, b), []).append((answers[a], answers[b]))
    rows = []
    for (a, b), values in sorted(shared.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        firsts, seconds = zip(*values, strict=True)
        rows.append({"annotators": (a, b), "kappa": cohen_kappa(firsts, seconds), "tasks": len(values)})
    return rows


def _span_key(span) -> tuple:
    if isinstance(span, dict):
        return (int(span["start"]), int(span["end"]), str(span.get("label", "")))
    start, end, label = span
    return (int(start), int(end), str(label))


def span_f1(first: Iterable, second: Iterable) -> float:
    """F1 between two annotators' span sets, exact match on (start, end, label).

    Symmetric: 2|A∩B| / (|A| + |B|). Two empty sets agree fully (1.0): both said "no entities".
    """
    a, b = {_span_key(s) for s in first}, {_span_key(s) for s in second}
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def span_f1_unit(unit: Sequence[Iterable | None]) -> float | None:
    """Mean pairwise span F1 among the annotators of one task; None with fewer than two."""
    present = _present(unit)
    if len(present) < 2:
        return None
    scores = [span_f1(a, b) for a, b in combinations(present, 2)]
    return sum(scores) / len(scores)


def span_f1_mean(units: Sequence[Sequence[Iterable | None]]) -> float | None:
    """Span-level F1 between annotators over a project: the mean of each task's pairwise F1."""
    scores = [s for s in (span_f1_unit(u) for u in units) if s is not None]
    return sum(scores) / len(scores) if scores else None


def unit_agreement(unit: Sequence, *, kind: str) -> float | None:
    """How much one task's annotators agree, 0..1, for listing low-agreement items.

    categorical: the share of annotator pairs that gave the same value;
    ordinal (ratings 1-5): 1 - mean pairwise |difference| / 4;
    spans: mean pairwise span F1.
    """
    if kind == "spans":
        return span_f1_unit(unit)
    present = _present(unit)
    if len(present) < 2:
        return None
    n = len(present)
    pairs = n * (n - 1) / 2
    if kind == "ordinal":
        width = RATING_DOMAIN[-1] - RATING_DOMAIN[0]
        ordered = sorted(present)
        # Sum of |a - b| over all pairs of a sorted list: each value minus those before it.
        gaps = sum(value * (2 * i - n + 1) for i, value in enumerate(ordered))
        return 1.0 - gaps / (pairs * width)
    return sum(c * (c - 1) / 2 for c in Counter(present).values()) / pairs


def majority_value(values: Sequence[Hashable]) -> Hashable | None:
    """The value given most often, or None when two or more values tie for first."""
    if not values:
        return None
    ranked = Counter(values).most_common(2)
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def majority_agreement(by_task: dict[object, dict[object, Hashable]]) -> dict[object, dict]:
    """Each annotator's agreement with the majority of the *other* annotators of a task.

    Leaving the annotator out keeps their own answer from voting for itself (with two annotators
    the majority is the other one's answer). Tasks where the others tie are not counted.
    Answers {annotator: {"agree": n, "tasks": n, "rate": float | None}}.
    """
    out: dict[object, dict] = {}
    for answers in by_task.values():
        if len(answers) < 2:
            continue
        for annotator, value in answers.items():
            others = [v for who, v in answers.items() if who != annotator]
            majority = majority_value(others)
            row = out.setdefault(annotator, {"agree": 0, "tasks": 0, "rate": None})
            if majority is None:
                continue
            row["tasks"] += 1
            row["agree"] += int(value == majority)
    for row in out.values():
        row["rate"] = row["agree"] / row["tasks"] if row["tasks"] else None
    return out


def span_majority_agreement(by_task: dict[object, dict[object, Iterable]]) -> dict[object, dict]:
    """NER: each annotator's mean span F1 against the spans most of the *others* marked.

    A span is in the others' majority when more than half of the other annotators marked it.
    Answers {annotator: {"f1_sum": float, "tasks": n, "rate": float | None}}.
    """
    out: dict[object, dict] = {}
    for answers in by_task.values():
        if len(answers) < 2:
            continue
        keyed = {who: {_span_key(s) for s in spans} for who, spans in answers.items()}
        for annotator, spans in keyed.items():
            others = [s for who, s in keyed.items() if who != annotator]
            votes = Counter(span for s in others for span in s)
            majority = {span for span, n in votes.items() if n * 2 > len(others)}
            row = out.setdefault(annotator, {"f1_sum": 0.0, "tasks": 0, "rate": None})
            row["tasks"] += 1
            row["f1_sum"] += span_f1(spans, majority)
    for row in out.values():
        row["rate"] = row["f1_sum"] / row["tasks"] if row["tasks"] else None
    return out


# --- Compare: win rates and Bradley–Terry ------------------------------------------------------

ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INIT = 1000.0


def win_rates(comparisons: Iterable[tuple[str, str, str]]) -> dict[str, dict]:
    """Per model: wins, losses, ties, comparisons and win rate (a tie counts half a win)."""
    out: dict[str, dict] = {}
    for model_a, model_b, outcome in comparisons:
        if model_a == model_b:
            continue
        for model in (model_a, model_b):
            out.setdefault(model, {"wins": 0, "losses": 0, "ties": 0, "comparisons": 0})
        out[model_a]["comparisons"] += 1
        out[model_b]["comparisons"] += 1
        if outcome == "a":
            out[model_a]["wins"] += 1
            out[model_b]["losses"] += 1
        elif outcome == "b":
            out[model_b]["wins"] += 1
            out[model_a]["losses"] += 1
        else:
            out[model_a]["ties"] += 1
            out[model_b]["ties"] += 1
    for row in out.values():
        row["win_rate"] = (row["wins"] + 0.5 * row["ties"]) / row["comparisons"]
    return out


def _win_matrix(comparisons: Sequence[tuple[str, str, str]], index: dict[str, int]) -> np.ndarray:
    """W[i, j]: how often i beat j, a tie counting half a win for each side."""
    wins = np.zeros((len(index), len(index)))
    for model_a, model_b, outcome in comparisons:
        i, j = index[model_a], index[model_b]
        if outcome == "a":
            wins[i, j] += 1
        elif outcome == "b":
            wins[j, i] += 1
        else:
            wins[i, j] += 0.5
            wins[j, i] += 0.5
    return wins


def _bt_fit(
    wins: np.ndarray, anchor: int, ridge: float, iterations: int = 100, start: np.ndarray | None = None
) -> np.ndarray:
    """Bradley–Terry MLE by Newton's method on log-strengths, `anchor` held at 0.

    P(i beats j) = 1 / (1 + exp(theta_j - theta_i)). A tiny ridge keeps strengths finite when a
    model won (or lost) every comparison, where the plain MLE runs off to infinity.
    """
    k = wins.shape[0]
    games = wins + wins.T
    theta = np.zeros(k) if start is None else start.copy()
    free = np.array([m for m in range(k) if m != anchor])
    if free.size == 0:
        return theta
    for _ in range(iterations):
        diff = theta[:, None] - theta[None, :]
        p = 1.0 / (1.0 + np.exp(-diff))
        gradient = (wins - games * p).sum(axis=1) - ridge * theta
        weight = games * p * (1.0 - p)
        hessian = np.diag(weight.sum(axis=1) + ridge) - weight
        step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
        theta[free] += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def bradley_terry(
    comparisons: Sequence[tuple[str, str, str]],
    *,
    baseline: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    ridge: float = 1e-6,
) -> dict[str, dict]:
    """Bradley–Terry scores with bootstrap 95% intervals (methods.md §10, FastChat's elo_analysis).

    Scores are on the Elo scale (400 per factor of 10 in odds) with `baseline` anchored at 1000;
    the default baseline is the model with the most comparisons. Ties count as half a win for each
    side. The interval comes from `bootstrap` resamples of the comparisons (with replacement): the
    2.5 and 97.5 percentiles of the refitted scores. Answers {model: {"score", "ci_low", "ci_high",
    "comparisons"}}, or {} when there is no comparison between two different models.
    """
    comparisons = [(a, b, o) for a, b, o in comparisons if a != b]
    if not comparisons:
        return {}
    models = sorted({m for a, b, _ in comparisons for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    counts = Counter(m for a, b, _ in comparisons for m in (a, b))
    if baseline not in index:
        baseline = max(models, key=lambda m: (counts[m], [-ord(ch) for ch in m]))
    anchor = index[baseline]
    to_elo = ELO_SCALE / math.log(ELO_BASE)

    theta = _bt_fit(_win_matrix(comparisons, index), anchor, ridge)
    scores = ELO_INIT + to_elo * theta

    # Resample the distinct (pair, outcome) cells with multinomial counts: the same as resampling
    # rows, without materialising each resample. Each cell adds its count to one or (a tie, half
    # each) two entries of the win matrix; `flat`/`weight` say where and how much.
    cells = Counter(comparisons)
    keys = list(cells)
    k = len(models)
    probabilities = np.array([cells[key] for key in keys], dtype=float) / len(comparisons)
    cell_of, flat, weight = [], [], []
    for c, (model_a, model_b, outcome) in enumerate(keys):
        i, j = index[model_a], index[model_b]
        if outcome == "a":
            parts = [(i * k + j, 1.0)]
        elif outcome == "b":
            parts = [(j * k + i, 1.0)]
        else:
            parts = [(i * k + j, 0.5), (j * k + i, 0.5)]
        for position, share in parts:
            cell_of.append(c)
            flat.append(position)
            weight.append(share)
    cell_of, flat, weight = np.array(cell_of), np.array(flat), np.array(weight)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(comparisons), probabilities, size=bootstrap) if bootstrap else []
    samples = np.empty((bootstrap, len(models)))
    for r, draw in enumerate(draws):
        wins = np.bincount(flat, weights=draw[cell_of] * weight, minlength=k * k).reshape(k, k)
        sample = ELO_INIT + to_elo * _bt_fit(wins, anchor, ridge, start=theta)
        # A model that drew no comparison in this resample has no score in it.
        played = (wins + wins.T).sum(axis=1) > 0
        sample[~played] = np.nan
        if not played[anchor]:
            sample[:] = np.nan  # without the baseline the resample has no common scale
        samples[r] = sample
    low, high = np.full(len(models), np.nan), np.full(len(models), np.nan)
    for i in range(len(models)):
        column = samples[:, i][~np.isnan(samples[:, i])]
        if column.size:
            low[i], high[i] = np.percentile(column, [2.5, 97.5])
    return {
        model: {
            "score": float(scores[i]),
            "ci_low": None if np.isnan(low[i]) else float(low[i]),
            "ci_high": None if np.isnan(high[i]) else float(high[i]),
            "comparisons": counts[model],
            "baseline": model == baseline,
        }
        for model, i in index.items()
    }
