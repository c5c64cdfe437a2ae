"""How fast torch.export writes a PyTorch text model (nn.Embedding + nn.LSTM/GRU + nn.Linear,
Program 6) as a data-only .pt2, by export setting: the batch axis dynamic or fixed, strict
(TorchDynamo) or non-strict tracing, and the padded length of the reviews. For each: the export,
the save, the load and one prediction on a batch of reviews, the graph's node count (a recurrent
layer unrolled over every time step shows as thousands of nodes), whether the loaded program
agrees with the model, and whether the host's .pt2 checks accept the archive.

Models: the seed's LSTM (Embedding(10000, 32), LSTM(32), Linear(32, 2), 100 words; the model
tests/test_program6_torch.py grades) and a heavy one, two stacked bidirectional LSTM layers
(Embedding(20000, 128), LSTM(128, num_layers=2, bidirectional=True), Linear(256, 1), 300 words),
and a GRU. Median of --repeat runs. Writes bench/results/text_export.json (text_export_all_repeat1.json:
every setting once, dynamic batch included; text_export.json: --fixed-only, --repeat 3).

Usage: python3 bench/bench_text_export.py [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
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

import torch  # noqa: E402
from torch import nn  # noqa: E402

try:  # the host's .pt2 checks (grader.trusted needs the host's packages: pydantic)
    from grader.trusted import Refused, check_pt2  # noqa: E402
except ImportError:
    Refused, check_pt2 = ValueError, None


class Reviews(nn.Module):
    def __init__(self, vocab: int, dim: int, hidden: int, layers: int, bidirectional: bool, outputs: int,
                 cell: type = nn.LSTM):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.rnn = cell(dim, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), outputs)

    def forward(self, text):
        output, _ = self.rnn(self.embedding(text))
        return self.fc(output[:, -1, :])


MODELS = {
    "seed_lstm_100": (lambda: Reviews(10000, 32, 32, 1, False, 2), 100),
    "gru_100": (lambda: Reviews(10000, 32, 32, 1, False, 1, nn.GRU), 100),
    "bilstm2_300": (lambda: Reviews(20000, 128, 128, 2, True, 1), 300),
}


def export(model: nn.Module, example: torch.Tensor, dynamic: bool, strict: bool):
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    return torch.export.export(model, (example,), dynamic_shapes=shapes, strict=strict)


def one(name: str, dynamic: bool, strict: bool) -> dict:
    make, length = MODELS[name]
    torch.manual_seed(0)
    model = make().eval()
    example = torch.randint(0, 1000, (2, length))
    start = time.perf_counter()
    program = export(model, example, dynamic, strict)
    exported = time.perf_counter() - start
    program._example_inputs = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt2"
        start = time.perf_counter()
        torch.export.save(program, str(path))
        saved = time.perf_counter() - start
        try:
            accepted = "not checked (no grader.trusted here)" if check_pt2 is None else check_pt2(path) or True
        except Refused as e:
            accepted = str(e)
        start = time.perf_counter()
        loaded = torch.export.load(str(path)).module()
        batch = torch.randint(0, 1000, (2 if not dynamic else 256, length))
        with torch.no_grad():
            got = loaded(batch)
        load_predict = time.perf_counter() - start
        with torch.no_grad():
            agrees = bool(torch.allclose(got, model(batch), atol=1e-5))
        size = path.stat().st_size
    return {"export_s": exported, "save_s": saved, "load_predict_s": load_predict,
            "nodes": len(program.graph.nodes), "agrees": agrees, "host_accepts": accepted, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--fixed-only", action="store_true", help="leave out the dynamic batch axis (slow)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "text_export.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warm = export(nn.Linear(2, 2), torch.zeros(1, 2), False, False)  # the first export imports the stack
    torch.export.save(warm, io.BytesIO())
    results = {}
    for name in MODELS:
        for dynamic in (False,) if args.fixed_only else (True, False):
            for strict in (False, True):
                key = f"{name} {'dynamic' if dynamic else 'fixed'} batch, {'strict' if strict else 'non-strict'}"
                runs = [one(name, dynamic, strict) for _ in range(args.repeat)]
                row = {k: round(statistics.median(r[k] for r in runs), 3) for k in ("export_s", "save_s",
                                                                                     "load_predict_s")}
                row.update({k: runs[0][k] for k in ("nodes", "agrees", "host_accepts", "bytes")})
                row["runs_export_s"] = [round(r["export_s"], 3) for r in runs]
                results[key] = row
                print(f"{key:55s} export {row['export_s']:7.2f}s save {row['save_s']:5.2f}s load+predict "
                      f"{row['load_predict_s']:5.2f}s nodes {row['nodes']:6d} agrees {row['agrees']} "
                      f"host {row['host_accepts']}", flush=True)
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0],
                       "gpu_hidden": os.environ.get("CUDA_VISIBLE_DEVICES") == ""},
           "repeat": args.repeat, "results": results}
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
