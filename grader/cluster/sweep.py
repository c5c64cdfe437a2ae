"""Removing job containers a node left behind. A forced cancel kills a task's worker, not
the container it started (the container belongs to the Docker engine), so the driver sends
each live node a task pinned to it that removes that node's containers: those of the batch
being cancelled, and those whose owning process is gone. Containers carry the node's id as a
label, so nodes sharing one engine (one machine) each sweep only their own.
"""

from __future__ import annotations

from pydantic import BaseModel

SWEEP_WAIT_S = 60.0  # the longest the driver waits for every node's sweep


class SweepReport(BaseModel):
    node_id: str
    removed: int = 0
    left: list[str] = []  # containers that could not be removed (ids)
    problem: str | None = None  # no engine on the node, or the sweep task failed


def sweep_node(node_id: str, batch: str | None) -> str:
    """Runs on the node: removes its job containers of `batch`, and those whose owner is no
    longer running. Returns a SweepReport as JSON (a node without Docker has nothing to sweep)."""
    from grader.runners.docker import BATCH_LABEL, ENGINE_ANSWER_S, JOB_LABEL, NODE_LABEL, _owner_alive, with_deadline
    from grader.sandbox_image import SandboxError, engine

    report = SweepReport(node_id=node_id)
    try:
        client = engine(timeout=ENGINE_ANSWER_S)
    except SandboxError as e:
        report.problem = str(e).split(". ")[0]
        return report.model_dump_json()
    for c in client.containers.list(all=True, filters={"label": f"{NODE_LABEL}={node_id}"}):
        labels = c.labels or {}
        if (batch and labels.get(BATCH_LABEL) == batch) or not _owner_alive(labels.get(JOB_LABEL, "")):
            answered, error = with_deadline(lambda c=c: c.remove(force=True, v=True), ENGINE_ANSWER_S)
            if answered and not isinstance(error, Exception):
                report.removed += 1
            else:
                report.left.append(c.short_id)
    return report.model_dump_json()


def sweep_cluster(batch: str | None) -> list[SweepReport]:
    """From the driver: one sweep task pinned to each live node (no CPU asked, so it runs
    beside busy jobs); a node that does not answer within SWEEP_WAIT_S is named."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(sweep_node)
    refs = {task.options(num_cpus=0, max_retries=0,
                         scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(n["NodeID"], batch): n["NodeID"] for n in ray.nodes() if n["Alive"]}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=SWEEP_WAIT_S)
    reports = []
    for ref, node_id in refs.items():
        try:
            reports.append(SweepReport.model_validate_json(ray.get(ref, timeout=0)) if ref in ready else
                           SweepReport(node_id=node_id, problem=f"no answer within {SWEEP_WAIT_S:.0f} s"))
        except Exception as e:  # noqa: BLE001 - a node that failed its sweep is named, the others count
            reports.append(SweepReport(node_id=node_id, problem=f"{type(e).__name__}: {e}"))
    return reports
