"""Which accuracy counts, and what to say about it: the trusted figure measured outside the
student's process (grader/trusted.py) against the probe's in-process measurement.

The trusted figure counts. Without one, for a model that should have had one, the in-process
figure is used but the check fails (keeping the mark below Good) with a flag for review.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.probe.layouts import re_measured

if TYPE_CHECKING:  # registry imports the check modules, which import this one
    from grader.harness.registry import Context, Outcome

# served-test minus unseen accuracy that names a leak: LEAK_SIGMAS standard errors of the
# difference (0.09 at 1000 and 1000 samples scoring 50%; 0.036 at 2000 and 2000 scoring 91%, where a
# model of reviews trained on the test set scores 99.7% and 91%), and never under LEAK_FLOOR
LEAK_SIGMAS = 4.0
LEAK_FLOOR = 0.03
LEAK_SHARE = 0.05  # of the fitted images found among the served test images (in-process evidence)
DISAGREEMENT = 0.02  # in-process vs trusted accuracy on the same served test images


@dataclass
class Figure:
    accuracy: float | None
    problem: str | None = None  # a reason the check cannot pass whatever the figure
    flags: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def figure(ctx: Context, measurement: dict[str, Any] | None) -> Figure:
    """The accuracy that decides the band for the model measured as `measurement`."""
    m = measurement or {}
    result = accuracy_figure(ctx, m)
    share = m.get("fit_on_served_test") or 0
    if share >= LEAK_SHARE and not result.problem:
        result.problem = (f"trained on the test set: {share:.0%} of the samples the model was fitted on are "
                          "served test samples")
        result.flags.append(result.problem)
    return result


def accuracy_figure(ctx: Context, m: dict[str, Any]) -> Figure:
    inside = m.get("accuracy")
    t = ctx.trusted_for(m)
    if t is not None and t.accuracy is not None:
        return trusted_figure(t, inside)
    evidence = {"in-process measurement": inside, "source": "the program's own process (evidence only)"}
    if inside is None or not re_measured(ctx.rubric.dataset, m.get("framework", "keras")):
        if inside is not None:
            evidence["note"] = "this kind of model is not yet re-measured outside the program's process"
        return Figure(inside, evidence=evidence)
    reason = t.error if t is not None and t.error else "the program's trace holds no exported model"
    problem = f"not re-measured outside the program's process ({reason})"
    return Figure(inside, problem=problem, flags=[f"{problem}: capped below Good, for faculty review"],
                  evidence={**evidence, "why not trusted": reason})


def trusted_figure(t, inside: float | None) -> Figure:
    evidence = {"trusted accuracy": t.accuracy, "on images the program never received": t.accuracy_unseen,
                "on the served test images": t.accuracy_served, "in-process measurement": inside,
                "source": f"clean sandbox ({t.kind}); unseen images: {t.unseen or 'none'}"}
    result = Figure(t.accuracy, evidence=evidence)
    if t.test_set_visible:
        evidence["note"] = "every test image was served to the program (full run on real data)"
    if t.accuracy_unseen is not None and t.accuracy_served is not None \
            and t.accuracy_served - t.accuracy_unseen > leak_margin(t):
        result.problem = (f"trained on the test set: the model scores {t.accuracy_served:.1%} on the test samples "
                          f"it was served but {t.accuracy_unseen:.1%} on samples it never saw")
        result.flags.append(result.problem)
    if inside is not None and t.accuracy_served is not None and abs(inside - t.accuracy_served) > DISAGREEMENT:
        result.flags.append(f"the program's process reported accuracy {inside:.2f}, the model measures "
                            f"{t.accuracy_served:.2f} outside it on the same images: the trusted figure counts")
    return result


def leak_margin(t) -> float:
    """The served-minus-unseen accuracy beyond which sampling noise does not explain the gap:
    LEAK_SIGMAS standard errors of the difference of two proportions, at least LEAK_FLOOR."""
    p = (t.accuracy_served * t.n_served + t.accuracy_unseen * t.n_unseen) / max(1, t.n_served + t.n_unseen)
    se = math.sqrt(max(p * (1 - p), 0.01) * (1 / max(1, t.n_served) + 1 / max(1, t.n_unseen)))
    return max(LEAK_FLOOR, LEAK_SIGMAS * se)


# ---------------------------------------------------------------- a chatbot (Program 7)

TRAINED_RATIO = 0.8  # a trained model's loss on its training rows, at most this share of a fresh one's


def exported_chatbot(ctx: Context) -> tuple[Any, str | None]:
    """(the trusted measurement of a chatbot, None), or (None, why it is missing) for a Keras
    or PyTorch chatbot that should have been exported; (None, None) for any other program (its
    checks rest on the process as before)."""
    model = ctx.main_model or {}
    if not (ctx.rubric.probe or {}).get("chat") or not model or model.get("framework", "keras") not in ("keras", "torch"):
        return None, None
    found = [t for t in (ctx.run.trusted if ctx.run else []) if t.part == "chatbot"]
    if found and not found[-1].error:
        return found[-1], None
    return None, found[-1].error if found else "the program's trace holds no exported model"


def not_exported(what: str, reason: str, hint: str = "") -> Outcome:
    """A check that fails because its model was not re-measured outside the program's process:
    a gated one keeps the mark below Good, and faculty are asked to look."""
    from grader.harness.registry import Outcome

    problem = f"not re-measured outside the program's process ({reason})"
    return Outcome(False, f"{what}: {problem}", hint=hint, flag=f"{problem}: capped below Good, for faculty review",
                   evidence={"why not trusted": reason, "source": "the program's own process (evidence only)"})
