"""Benchmarks of grading on a Ray cluster (`grader batch --cluster`), on this one machine.
Prints figures and writes them to bench/results/cluster.json.

1. Per-job overhead of the cluster against the local thread pool: one trivial program
   (Program 7's rubric, `print`) graded --repeat times, one job at a time, in the local
   sandbox, through each engine in turn (grader.batch.PoolEngine, and
   grader.cluster.engine.RayEngine on a head and one grading node); median wall time per
   job, and the median of the paired differences.
   Target: under 0.5 s per job.
2. Scheduling throughput: 200 tasks that each sleep 1 s, with the resource shape a batch
   asks for (1 CPU and the rubric's memory), over 1, 2 and 3 simulated nodes of 4 slots
   each; jobs per second and the ratio to one node. The tasks sleep rather than grade, so
   the figure is the scheduler's scaling, not this machine's two cores.

Usage: python3 bench/bench_cluster.py [--repeat 15] [--tasks 200] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from grader.batch import PoolEngine  # noqa: E402
from grader.cluster.engine import ClusterOptions, RayEngine  # noqa: E402
from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import grade_key  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.submissions import class_jobs  # noqa: E402

PROGRAM = 7
SLOTS_PER_NODE = 4
STORE = 80 * 2**20


def one_job(engine, job, rubrics, cache: Path, out: Path) -> float:
    """Wall seconds of one job, submitted alone and waited for."""
    start = time.perf_counter()
    handle = engine.submit(job, grade_key(job, rubrics, cache), out / job.student)
    while not (done := engine.finished([handle], timeout=0.05)):
        pass
    assert not isinstance(done[0][1], Exception), done[0][1]
    return time.perf_counter() - start


def overhead(repeat: int, work: Path) -> dict:
    """The same trivial job through each engine in turn (paired, so that the machine's load
    weighs on both alike); the first pair warms the engines up and is not counted."""
    rubrics, cache = load_rubrics(), work / "cache"
    for i in range(repeat + 1):
        (work / "class" / f"S{i:03d}").mkdir(parents=True)
        (work / "class" / f"S{i:03d}" / f"program{PROGRAM}.py").write_text(f"print('job {i}')\n")
    jobs = class_jobs(work / "class", [PROGRAM], "20CSEL76", "quick")
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, object_store_memory=STORE))
    cluster.add_node(num_cpus=2, object_store_memory=STORE)
    cluster.wait_for_nodes()
    pool = PoolEngine(rubrics, LocalRunner(), cache, parallel=1)
    engine = RayEngine(rubrics, cache, ClusterOptions(address=cluster.address, gpus="none"))
    try:
        pairs = [(one_job(pool, job, rubrics, cache, work / "pool"), one_job(engine, job, rubrics, cache, work / "ray"))
                 for job in jobs][1:]
    finally:
        pool.close()
        engine.close()
        cluster.shutdown()
    local, remote = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"jobs": len(pairs), "local_pool_median_s": round(statistics.median(local), 3),
            "cluster_median_s": round(statistics.median(remote), 3),
            "overhead_per_job_s": round(statistics.median(r - loc for loc, r in pairs), 3),
            "overhead_quartiles_s": [round(q, 3) for q in statistics.quantiles([r - loc for loc, r in pairs], n=4)],
            "target_s": 0.5}


def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def throughput(tasks: int, nodes: int, memory_mb: int) -> float:
    """Seconds for `tasks` one-second tasks over `nodes` simulated nodes of SLOTS_PER_NODE slots."""
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, object_store_memory=STORE))
    for _ in range(nodes):
        cluster.add_node(num_cpus=SLOTS_PER_NODE, memory=SLOTS_PER_NODE * memory_mb * 2**20, object_store_memory=STORE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        task = ray.remote(max_calls=0)(sleeper).options(num_cpus=1, memory=memory_mb * 2**20, max_retries=3)
        ray.get([task.remote(0.01) for _ in range(nodes * SLOTS_PER_NODE * 2)])  # workers started
        start = time.perf_counter()
        ray.get([task.remote(1.0) for _ in range(tasks)])
        return time.perf_counter() - start
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "ray": ray.__version__, "load_before": os.getloadavg()[0]}}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        results["overhead"] = overhead(args.repeat, Path(tmp))
    print(f"per-job: local pool {results['overhead']['local_pool_median_s']:.2f} s, cluster "
          f"{results['overhead']['cluster_median_s']:.2f} s (median of {args.repeat}): overhead "
          f"{results['overhead']['overhead_per_job_s']:+.2f} s per job (target < 0.5 s)")
    if not args.skip_throughput:
        memory_mb = load_rubrics().program(PROGRAM).limits.memory_mb
        runs = {}
        for nodes in (1, 2, 3):
            seconds = throughput(args.tasks, nodes, memory_mb)
            ideal = args.tasks / (nodes * SLOTS_PER_NODE)
            runs[str(nodes)] = {"seconds": round(seconds, 2), "jobs_per_s": round(args.tasks / seconds, 2),
                                "ideal_seconds": round(ideal, 2), "efficiency": round(ideal / seconds, 3)}
            print(f"{args.tasks} x 1 s over {nodes} node(s) of {SLOTS_PER_NODE} slots: {seconds:.1f} s "
                  f"({args.tasks / seconds:.2f} jobs/s; ideal {ideal:.1f} s)")
        for n in ("2", "3"):
            runs[n]["ratio_to_1_node"] = round(runs[n]["jobs_per_s"] / runs["1"]["jobs_per_s"], 2)
        print(f"throughput ratios: 2 nodes {runs['2']['ratio_to_1_node']}x, 3 nodes {runs['3']['ratio_to_1_node']}x "
              "(ideal 2x and 3x)")
        results["throughput"] = {"tasks": args.tasks, "task_s": 1.0, "slots_per_node": SLOTS_PER_NODE, "runs": runs}
    results["machine"]["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {RESULTS / 'cluster.json'}")


if __name__ == "__main__":
    main()
