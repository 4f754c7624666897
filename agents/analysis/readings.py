"""One sentence reading each plot of the report, from the numbers of ``analysis.json``."""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure to 3 significant digits, or "n/a" where the measure does not apply."""
    return "n/a" if value is None else f"{value:.{digits}g}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def cycle_profile(conv: dict[str, Any]) -> dict[str, float | None] | None:
    """Mean L residual into the second and into the last step of an H cycle, and into the first step
    of a cycle after H moved (None: never); None for one low-level step per cycle."""
    per_cycle = conv["steps_per_cycle"]
    residuals = np.asarray([np.nan, *conv["L"]])  # index = step; step 0 has no residual
    if per_cycle < 2 or len(residuals) < per_cycle:
        return None
    after_H = residuals[per_cycle::per_cycle]
    return {
        "second": float(np.mean(residuals[1::per_cycle])),
        "last": float(np.mean(residuals[per_cycle - 1 :: per_cycle])),
        "after_H": float(np.mean(after_H)) if len(after_H) else None,
    }


def convergence(conv: dict[str, Any]) -> str:
    """How L moves within an H cycle, how H moves, and the control's one recurrence."""
    L, H = conv["L"], conv["H"]
    if not L:
        return "One step per segment: there is no recurrence whose residual could be measured."
    profile = cycle_profile(conv)
    if profile is None:
        sentence = f"One recurrence: its residual goes from {fmt(L[0])} at the first step to {fmt(L[-1])} at the last"
    else:
        sentence = f"Within an H cycle L's residual is {fmt(profile['second'])} at the second step"
        if conv["steps_per_cycle"] > 2:
            sentence += f" and {fmt(profile['last'])} at the last"
        if profile["after_H"] is not None:
            sentence += f" and is {fmt(profile['after_H'])} at the first step after H moves"
        sentence += f"; H's residual goes from {fmt(H[0])} to {fmt(H[-1])}" if H else "; H is updated once"
    control = conv.get("control")
    if control and control["L"]:
        sentence += (f"; the control ({control['label']}) goes from {fmt(control['L'][0])} to "
                     f"{fmt(control['L'][-1])}")  # fmt: skip
    return sentence + "."


def participation(pr: dict[str, Any]) -> str:
    return (
        f"PR_H = {fmt(pr['H'])} and PR_L = {fmt(pr['L'])} give PR_H / PR_L = {fmt(pr['ratio'])} trained against "
        f"{fmt(pr['untrained_ratio'])} for an untrained model of the same config (the HRM paper: near 3 trained, "
        "near 1 untrained; the guide's target: above 2)."
    )


def per_segment(rows: list[dict[str, Any]]) -> str:
    scores = [r["score"] for r in rows]
    metric = next(k for k in rows[0] if k not in ("segment", "score")).replace("_", " ")
    best = int(np.argmax(scores))
    if len(scores) == 1:
        return f"One segment: its answer scores {fmt(scores[0])} ({metric})."
    return (
        f"The {metric} of the answer read after each segment goes from {fmt(scores[0])} after segment 1 to "
        f"{fmt(scores[-1])} after segment {len(scores)} (best {fmt(scores[best])} after segment {best + 1})."
    )


def histogram(halting: dict[str, Any]) -> str:
    counts = halting["histogram"]
    total = sum(counts.values())
    early = sum(v for k, v in counts.items() if int(k) < halting["max_segments"]) / max(1, total)
    return (
        f"With the Q head halting, inputs used {halting['mean_segments']:.2f} segments on average and "
        f"{100 * early:.0f}% stopped before the cap of {halting['max_segments']} "
        f"(score with halting: {fmt(halting['score']['score'])})."
    )


def q_halt(halting: dict[str, Any]) -> str:
    probs = halting["q_halt_probability"]
    if len(probs) == 1:
        return f"The mean halting probability after the one segment is {fmt(probs[0])}."
    trend = "rises" if probs[-1] > probs[0] else "falls" if probs[-1] < probs[0] else "goes"
    return f"The mean halting probability {trend} from {fmt(probs[0])} after segment 1 to {fmt(probs[-1])} after segment {len(probs)}."


def difficulty(halting: dict[str, Any]) -> str:
    r = halting["difficulty_correlation"]
    others = [
        f"{k.replace('_', ' ')} {fmt(v)}" for k, v in halting["correlations"].items() if k != halting["difficulty"]
    ]
    reading = "undefined (segments used or difficulty do not vary)" if r is None else fmt(r)
    extra = f" (other measures: {', '.join(others)})" if others else ""
    measure = halting["difficulty"].replace("_", " ")
    return f"Segments used against {measure}: Pearson r = {reading}{extra}."


def scaling(rows: list[dict[str, Any]]) -> str:
    scores = [r["score"] for r in rows]
    best = int(np.argmax(scores))
    return (
        f"With {rows[-1]['multiple']}x the trained segments ({rows[-1]['segments']}) the score is {fmt(scores[-1])} "
        f"against {fmt(scores[0])} at 1x ({rows[0]['segments']}); best {fmt(scores[best])} at {plural(rows[best]['segments'], 'segment')}."
    )
