"""The pipeline's ensemble router: one frame through the chosen classify services at once,
under a deadline, their answers combined confidence-weighted — the in-process counterpart
of the aggregate stage, for an ensemble chosen per consumer
(`harmonia.orchestration.ensembles.select_ensemble`).

Where the aggregate stage waits for every service and keeps the most confident answer, the
router waits at most ``deadline_ms``: a member that has not answered by then is left out of
the verdict (and counted as late in the sample it reports), so a slow replica delays no
request beyond its deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from harmonia.orchestration.ensembles import Selection, run_ensemble
from harmonia.sdk import Probe
from harmonia.systems.pipeline import VOTE_MODEL
from harmonia.systems.pipeline.stages import Answer, Frame, Verdict

Member = Callable[[Frame], Answer]


class EnsembleRouter:
    """Runs ``members`` (classify services by name) on each frame within ``deadline_ms`` and
    combines their answers: per class, the weighted mean of the members' confidences.

    ``weights`` by member (equal when None), ``order`` the start order when the members
    outnumber the workers (an LLF or DREAM schedule's names)."""

    def __init__(
        self,
        members: Mapping[str, Member],
        deadline_ms: float,
        *,
        probe: Probe | None = None,
        weights: Mapping[str, float] | None = None,
        order: Sequence[str] | None = None,
    ) -> None:
        if not members:
            raise ValueError("members: an ensemble needs at least one member")
        self.members = dict(members)
        self.deadline_ms = deadline_ms
        self.probe = probe
        self.weights = dict(weights) if weights is not None else None
        self.order = list(order) if order is not None else None
        self.verdicts = 0
        self.correct = 0
        self.late = 0

    @classmethod
    def from_selection(
        cls,
        selection: Selection,
        services: Mapping[str, Member],
        deadline_ms: float,
        **options: object,
    ) -> EnsembleRouter:
        """A router over the members a selection chose (each must be among ``services``)."""
        if not selection.feasible:
            raise ValueError("selection: no feasible ensemble to route to")
        missing = [m.service for m in selection.members if m.service not in services]
        if missing:
            raise ValueError(f"selection: no callable for {', '.join(missing)}")
        chosen = {m.service: services[m.service] for m in selection.members}
        return cls(chosen, deadline_ms, **options)  # type: ignore[arg-type]

    def __call__(self, frame: Frame) -> Verdict | None:
        """The ensemble's verdict on ``frame``; None when no member answered in time."""
        answers: dict[str, Answer] = {}

        def call(name: str) -> Callable[[], dict[str, float]]:
            def predict() -> dict[str, float]:
                answer = self.members[name](frame)
                answers[name] = answer
                return {str(answer.label): answer.confidence}

            return predict

        run = run_ensemble(
            {name: call(name) for name in self.members},
            self.deadline_ms,
            weights=self.weights,
            order=self.order,
        )
        self.late += len(run.late)
        combined = run.aggregate
        if combined.label is None:
            return None
        verdict = Verdict(
            index=frame.index,
            label=int(combined.label),
            confidence=combined.confidence,
            target=frame.label,
            chosen=max(
                combined.members, key=lambda m: answers[m].confidence if m in answers else 0.0
            ),
            agree=len({answers[m].label for m in combined.members}) == 1,
            trace_id=frame.trace_id,
        )
        if self.probe is not None:
            with self.probe.measure(VOTE_MODEL, trace_id=frame.trace_id) as sample:
                sample.prediction = float(verdict.label)
                sample.target = float(verdict.target)
                sample.metrics["confidence"] = verdict.confidence
                sample.metrics["correct"] = float(verdict.correct)
                sample.metrics["agree"] = float(verdict.agree)
                sample.metrics["late_members"] = float(len(run.late))
        self.verdicts += 1
        self.correct += verdict.correct
        return verdict
