"""`grader doctor --cluster`: every node of the cluster checked against this machine (the
driver) — Python, grader, harness, rubrics, sandbox image, staged data — plus its GPUs and
free disk, and a warning when Ray's token authentication is off.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from grader.cluster.models import Fingerprint, Sandbox
from grader.doctor import Finding

LOW_DISK_GB = 20.0  # less free space than this on a node's cache or temporary folder is worth a note


class NodeReport(BaseModel):
    """What one machine says about itself."""

    python: str = ""
    fingerprints: dict[int, Fingerprint]  # program -> what its grade keys depend on here
    data: dict[str, str]  # dataset or weights -> checksum, or 'stand-in'
    image: str  # the sandbox image's state in this node's engine
    gpus: dict[str, int]  # GPU index -> MB, from nvidia-smi
    disk_free_gb: dict[str, float]  # folder -> free GB
    problem: str | None = None  # the report could not be made (rubrics unreadable, ...)


def node_report(course: str, rubrics_dir: str | None, cache_dir: str, image: str) -> str:
    """Runs on a node (or on the driver): its NodeReport as JSON."""
    from grader import data
    from grader.cluster.node import fingerprint
    from grader.course import RubricError, load_rubrics
    from grader.runners.docker import host_gpus

    cache = Path(cache_dir)
    try:
        rubrics = load_rubrics(course, Path(rubrics_dir) if rubrics_dir else None)
    except RubricError as e:
        return NodeReport(fingerprints={}, data={}, image="", gpus={}, disk_free_gb={}, problem=str(e)).model_dump_json()
    sandbox = Sandbox(kind="docker", image=image)
    manifest = data.read_manifest(cache)
    checksums = {s.name: (str((manifest.get(s.name) or {}).get("sha256", "?"))[:16] if s.staged else "stand-in")
                 for s in data.status(cache)}
    checksums["weights"] = data.weights_state(cache)
    disk = {str(p): round(shutil.disk_usage(p).free / 2**30, 1) for p in (cache if cache.is_dir() else cache.parent,
                                                                         Path(tempfile.gettempdir()))
            if p.exists()}
    return NodeReport(python=platform.python_version(), fingerprints={p: fingerprint(rubrics, p, cache, sandbox) for p in sorted(rubrics.programs)},
                      data=checksums, image=_image_state(image), gpus=host_gpus(), disk_free_gb=disk).model_dump_json()


def _image_state(image: str) -> str:
    from grader.sandbox_image import IMAGES, SandboxError, engine, image_state

    try:
        client = engine(timeout=10)
    except SandboxError:
        return "no Docker engine"
    return image_state(client, image, "slim" if image == IMAGES["slim"] else "full")


def compare(driver: NodeReport, node: NodeReport) -> list[str]:
    """What differs between a node and the driver, each named once ('harness: node …, driver …')."""
    from grader.cluster.node import differences

    if node.problem:
        return [node.problem]
    found: list[str] = []
    for program, expected in driver.fingerprints.items():
        theirs = node.fingerprints.get(program)
        for d in differences(expected, theirs) if theirs else [f"program {program}: no rubric on the node"]:
            line = d if d.split(":")[0] in ("python", "grader", "harness", "image") else f"program {program} {d}"
            if line not in found:
                found.append(line)
    found += [f"data {name}: node {node.data.get(name)}, driver {value}"
              for name, value in driver.data.items() if node.data.get(name) != value]
    return found


def check_cluster(course: str, rubrics_dir: Path | None, cache_dir: Path, image: str) -> list[Finding]:
    """One finding per node (ok, or the differences named), and one on authentication.
    Needs a connection (grader.cluster.engine.connect)."""
    import ray

    args = (course, str(rubrics_dir.resolve()) if rubrics_dir else None, str(cache_dir.resolve()), image)
    driver = NodeReport.model_validate_json(node_report(*args))
    task = ray.remote(node_report)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    refs = [_pinned(task, n["NodeID"]).remote(*args) for n in nodes]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=120)
    findings = [_auth_finding()]
    for n, ref in zip(nodes, refs):
        name = f"Node {n['NodeManagerAddress']} ({n['NodeID'][:8]})"
        if ref not in ready:
            findings.append(Finding(topic=name, state="problem", detail="did not answer within 120 s"))
            continue
        findings.append(_node_finding(name, n, driver, NodeReport.model_validate_json(ray.get(ref))))
    return findings


def _pinned(task, node_id: str):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return task.options(num_cpus=0, max_retries=0,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))


def _node_finding(name: str, node: dict, driver: NodeReport, report: NodeReport) -> Finding:
    resources = node.get("Resources", {})
    gpus = ", ".join(f"GPU {i} ({mb / 1024:.0f} GB)" for i, mb in sorted(report.gpus.items())) or "no GPU"
    disk = ", ".join(f"{p} {gb:g} GB free" for p, gb in report.disk_free_gb.items())
    slots = f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU for Ray; {gpus}; {disk}"
    differ = compare(driver, report)
    if differ or report.image != "current":
        image = [] if report.image == "current" else [f"the sandbox image is {report.image} on the node"]
        return Finding(topic=name, state="problem",
                       detail="; ".join((["differs from this machine: " + "; ".join(differ)] if differ else []) + image),
                       fix="install the same grader version, build the same image (grader sandbox build), "
                           "copy the staged data with `rsync -a` (sizes and times must match)")
    low = [p for p, gb in report.disk_free_gb.items() if gb < LOW_DISK_GB]
    data = ", ".join(f"{k} {v}" for k, v in report.data.items())
    return Finding(topic=name, state="note" if low else "ok",
                   detail=f"same as this machine (Python {report.python}, image {report.image}; data: {data}); {slots}",
                   fix=f"free space under {', '.join(low)}" if low else "")


def _auth_finding() -> Finding:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        enabled = is_token_auth_enabled()
    except ImportError:  # a Ray without token authentication
        enabled = False
    if enabled:
        return Finding(topic="Ray authentication", state="ok", detail="token authentication is on")
    return Finding(topic="Ray authentication", state="problem",
                   detail="token authentication is off: anyone who reaches the cluster's ports can run code on "
                          "every node",
                   fix="generate a token (`ray get-auth-token --generate`), copy ~/.ray/auth_token to every node, "
                       "start every node with RAY_AUTH_MODE=token, and firewall Ray's ports to the grading servers")
