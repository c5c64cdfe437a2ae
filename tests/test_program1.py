"""Program 1 (CIFAR-10 with a. KNN, b. a 3-layer network): the OpenML table, torchvision's
CIFAR10 served offline, the PyTorch and scikit-learn probes, and the program graded for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, PROJECT, check
from grader.models import Status
from grader.probe import provider
from grader.reports import write_sheet

MANUAL = (FIXTURES / "manual" / "program1.py").read_text()
SMALL = {"train": 1500, "test": 500, "epochs": 2}  # 2000-row OpenML table, 2 passes per loader


def run_probe(tmp_path: Path, cache_dir: Path, source: str, frameworks=("sklearn", "torch"),
              epochs_cap=2, train=300, test=100) -> tuple[dict, str]:
    """Runs source under the probe (`python -m grader.probe`) in its own process: the hooks
    patch torch and scikit-learn for good, so never in the test process."""
    entry = tmp_path / "prog.py"
    entry.write_text(source)
    (tmp_path / "art").mkdir()
    config = {"entry": str(entry), "mode": "quick", "frameworks": list(frameworks), "dataset": "cifar10",
              "epochs_cap": epochs_cap, "quick_train": train, "quick_test": test, "stdin": [], "probe": {},
              "cache_dir": str(cache_dir), "out_dir": str(tmp_path), "artifacts_dir": str(tmp_path / "art")}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    done = subprocess.run([sys.executable, "-m", "grader.probe", str(tmp_path / "cfg.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))})
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["exception"] is None, trace["exception"]["traceback"]
    return trace, done.stdout


# ---------------------------------------------------------------- the OpenML table


def test_openml_table_is_cifar_in_openml_layout(tmp_path):
    s = provider.load("cifar10", cache_dir=tmp_path, quick=True, quick_train=40, quick_test=20)
    pixels, labels = provider.openml_table(s, "CIFAR_10_small")
    assert pixels.shape == (60, 3072) and pixels.dtype == np.uint8  # quick: train + test rows
    # channel-major rows (1024 red, 1024 green, 1024 blue), train images first
    assert (pixels[0, :1024].reshape(32, 32) == s.x_train[0, :, :, 0]).all()
    assert (pixels[41, 2048:].reshape(32, 32) == s.x_test[1, :, :, 2]).all()
    assert labels.tolist() == s.y_train.reshape(-1).tolist() + s.y_test.reshape(-1).tolist()
    assert provider.openml_name("cifar_10_SMALL", None) == "CIFAR_10_small"
    assert provider.openml_name(None, 40927) == "CIFAR_10" and provider.openml_name("mnist_784", None) is None


def test_full_openml_small_table_is_its_first_20000_rows():
    x = np.zeros((21000, 32, 32, 3), np.uint8)
    x[19999], x[20000] = 1, 2
    y = (np.arange(21000) % 10).astype(np.uint8).reshape(-1, 1)
    s = provider.Served("cifar10", "standin", x, y, x[:10], y[:10], quick=False)
    small, small_y = provider.openml_table(s, "CIFAR_10_small")
    whole, _ = provider.openml_table(s, "cifar_10")
    assert small.shape == (20000, 3072) and small[-1].max() == 1 and small_y[-1] == 19999 % 10
    assert whole.shape == (21010, 3072)


# ---------------------------------------------------------------- provider semantics under the probe

SEMANTICS = """
import json, os
import numpy as np
import torchvision
from torchvision import datasets, transforms
from torchvision.datasets import CIFAR10
from sklearn.datasets import fetch_openml
tr = datasets.CIFAR10(root='/nowhere/data', train=True, download=True)
te = torchvision.datasets.CIFAR10('./data', train=False, transform=transforms.ToTensor())
img, label = tr[0]
digits = datasets.MNIST("data", train=False, download=True)
digit, digit_label = digits[0]
b = fetch_openml(name="CIFAR_10_small")
X, y = b.data.astype('float32'), b.target.astype('int')  # the manual's calls: frames or arrays
X, y = np.asarray(X), np.asarray(y)
X2, y2 = fetch_openml(data_id=40927, return_X_y=True, as_frame=False)
try:
    fetch_openml("mnist_784")
    unknown = None
except OSError as e:
    unknown = str(e)
print(json.dumps({
    "len": [len(tr), len(te)], "classes": tr.classes, "data": [str(tr.data.dtype), list(tr.data.shape)],
    "targets": type(tr.targets).__name__, "item": [type(img).__name__, type(label).__name__],
    "tensor": list(te[0][0].shape), "max": float(te[0][0].max()), "same_class": CIFAR10 is datasets.CIFAR10,
    "is_cifar": isinstance(te, CIFAR10), "root_made": os.path.exists('./data'),
    "openml": [list(X.shape), str(X.dtype), sorted(set(y.tolist())), [str(t) for t in b.target[:2]],
               b.feature_names[:2], b.details["id"]],
    "row0": bool((X[0].reshape(3, 32, 32).transpose(1, 2, 0) == tr.data[0]).all()),
    "labels": bool((y[:len(tr)] == tr.targets).all()), "same_table": bool((X2 == X).all()),
    "mnist": [len(digits), str(digits.data.dtype), list(digits.data.shape[1:]), type(digits.targets).__name__,
              digit.mode, type(digit_label).__name__],
    "unknown": unknown}))
"""


def test_torchvision_cifar10_and_fetch_openml_served_offline(tmp_path, cache_dir):
    trace, out = run_probe(tmp_path, cache_dir, SEMANTICS)
    r = json.loads(out.strip().splitlines()[-1])
    assert r["len"] == [300, 100] and r["classes"][0] == "airplane" and len(r["classes"]) == 10
    assert r["data"] == ["uint8", [300, 32, 32, 3]] and r["targets"] == "list"
    assert r["item"] == ["Image", "int"]  # PIL image and int label, as torchvision gives
    assert r["tensor"] == [3, 32, 32] and r["max"] <= 1.0
    assert r["same_class"] and r["is_cifar"] and not r["root_made"]
    shape, dtype, classes, targets, features, openml_id = r["openml"]
    assert shape == [400, 3072] and dtype == "float32" and classes == list(range(10))
    assert all(t in [str(c) for c in range(10)] for t in targets)  # OpenML's string classes
    assert features == ["a0", "a1"] and openml_id == 40926
    assert r["row0"] and r["labels"] and r["same_table"]
    assert "cannot be served" in r["unknown"] and "CIFAR_10_small" in r["unknown"]
    assert r["mnist"] == [100, "torch.uint8", [28, 28], "Tensor", "L", "int"]  # torchvision keeps MNIST as tensors
    assert trace["dataset"]["source"] == "standin" and trace["dataset"]["openml"] == "CIFAR_10"


def test_fetch_openml_gives_data_frames_where_pandas_is_installed(tmp_path, cache_dir):
    pytest.importorskip("pandas")
    trace, out = run_probe(tmp_path, cache_dir, """
from sklearn.datasets import fetch_openml
b = fetch_openml(name="CIFAR_10_small")
print(type(b.data).__name__, type(b.target).__name__, b.frame.shape[1], b.target.astype("int").dtype)
""", frameworks=("sklearn",))
    assert out.split() == ["DataFrame", "Series", "3073", "int64"]


# ---------------------------------------------------------------- the PyTorch probe

TORCH_LOOPS = """
import torch, torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
x = torch.randn(256, 8); y = (x[:, 0] > 0).long()
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
for epoch in range(5):
    seen = 0
    for xb, yb in loader:
        opt.zero_grad(); loss = nn.functional.cross_entropy(net(xb), yb); loss.backward(); opt.step()
        seen += 1
    print("epoch", epoch + 1, "batches", seen)
class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 4); self.rnn = nn.LSTM(4, 6, batch_first=True); self.fc = nn.Linear(6, 2)
    def forward(self, t):
        return self.fc(self.rnn(self.emb(t))[0][:, -1])
seq = Seq()
sgd = torch.optim.SGD(seq.parameters(), lr=0.1)
tokens = torch.randint(0, 50, (16, 5))
for step in range(120):  # no DataLoader: batches by hand
    sgd.zero_grad(); loss = nn.CrossEntropyLoss()(seq(tokens), tokens[:, 0] % 2); loss.backward(); sgd.step()
"""


def test_torch_probe_records_models_steps_losses_and_caps_passes(tmp_path, cache_dir):
    trace, out = run_probe(tmp_path, cache_dir, TORCH_LOOPS, frameworks=("torch",), epochs_cap=2)
    # the program ran all 5 epochs as written; after 2 full passes each pass served one batch
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("epoch")] == ["8", "8", "1", "1", "1"]
    net, seq = trace["models"]
    assert [l["type"] for l in net["layers"]] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert net["layers"][0]["config"]["out_features"] == 16 and net["params"] == 8 * 16 + 16 + 16 * 2 + 2
    assert [l["type"] for l in seq["layers"]] == ["Embedding", "LSTM", "Linear"]
    assert seq["layers"][1]["config"]["hidden_size"] == 6 and set(seq["tree"]["children"]) == {"emb", "rnn", "fc"}
    first, second = trace["fits"]
    assert first["optimizer"] == {"class": "Adam", "learning_rate": 0.01, "param_groups": 1, "weight_decay": 0,
                                  "betas": [0.9, 0.999]}
    assert first["steps"] == 2 * 8 + 3 and first["epochs_run"] == 2 and first["truncated_passes"] == 3
    assert first["epochs_capped_to"] == 2 and "one batch" in first["cap"] and first["epochs_requested"] == 5
    assert len(first["history"]["loss"]) == 2 and first["history"]["loss"][1] < first["history"]["loss"][0]
    # a loop without a DataLoader has no epochs: its loss comes in windows of 50 steps
    assert second["model"] == 1 and second["steps"] == 120 and second["epochs_run"] == 0
    assert len(second["history"]["loss"]) == 2 and "50 optimizer steps" in second["history_unit"]
    assert trace["measurements"][0]["error"].startswith("the PyTorch part was served no dataset")


ARRAYS_NOT_TRANSFORMS = """
import torch, torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets
torch.manual_seed(0)
def tensors(ds):  # uint8 NHWC -> float NCHW in [0, 1]
    return torch.tensor(ds.data).permute(0, 3, 1, 2).float() / 255, torch.tensor(ds.targets)
x, y = tensors(datasets.CIFAR10("data", train=True, download=True))
xt, yt = tensors(datasets.CIFAR10("data", train=False, download=True))
net = nn.Sequential(nn.Flatten(), nn.Linear(3072, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(4):  # a new DataLoader each epoch
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(net(xb), yb).backward(); opt.step()
net.eval()
print((net(xt).argmax(1) == yt).float().mean().item())
"""


def test_network_fed_arrays_is_measured_on_inputs_scaled_like_its_training_batch(tmp_path, cache_dir):
    trace, out = run_probe(tmp_path, cache_dir, ARRAYS_NOT_TRANSFORMS, frameworks=("torch",), epochs_cap=3)
    fit = trace["fits"][0]  # the cap holds for the training, whichever loader serves it
    assert (fit["epochs_run"], fit["truncated_passes"], fit["steps"]) == (3, 1, 3 * 10 + 1)
    m = trace["measurements"][0]
    assert "(channels first) scaled like the first training batch" in m["method"] and m["n"] == 100
    assert m["accuracy"] == pytest.approx(float(out.split()[-1]), abs=0.02)


# ---------------------------------------------------------------- the scikit-learn probe

SKLEARN_PARTS = """
import numpy as np
from sklearn.datasets import fetch_openml
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = fetch_openml("CIFAR_10_small", return_X_y=True, as_frame=False)
y = y.astype(int)
pipe = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
pipe.fit(X[:300], y[:300])
pred = pipe.predict(X[300:])
knn = KNeighborsClassifier(n_neighbors=3).fit(X[:300], y[:300])   # raw pixels, sliced by hand
print("own", knn.score(X[300:], np.roll(y[300:], 1)))               # labels shifted by one row
"""


def test_sklearn_probe_traces_rows_and_checks_the_labels_passed(tmp_path, cache_dir):
    trace, out = run_probe(tmp_path, cache_dir, SKLEARN_PARTS, frameworks=("sklearn",))
    pipe, knn = trace["estimators"]  # the scaler and the pipeline's inner KNN are not recorded apart
    assert pipe["class"] == "Pipeline" and pipe["part"] == "knn" and pipe["calls"][0]["kind"] == "predict"
    assert knn["class"] == "KNeighborsClassifier" and knn["params"]["n_neighbors"] == 3
    assert knn["fits"] == [{"n": 300, "features": 3072, "on_served_table": False, "split_part": None}]
    assert knn["calls"][0]["kind"] == "score" and knn["calls"][0]["n"] == 100
    assert float(out.split("own")[1]) == pytest.approx(knn["calls"][0]["result"])
    # the last estimator fitted is measured: its rows matched by their pixels, so the shifted
    # labels it was scored against are caught and the true ones used
    m = trace["measurements"][0]
    assert m["part"] == "knn" and m["estimator"] == 1 and m["n"] == 100
    assert m["labels_verified"] and "matched by their pixels" in m["method"]
    assert m["labels_agree"] < 0.5 and m["accuracy_own_labels"] == pytest.approx(knn["calls"][0]["result"])
    assert m["accuracy"] > m["accuracy_own_labels"] + 0.1


KNN_ON_TORCHVISION = """
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from torchvision import datasets
train = datasets.CIFAR10("data", train=True, download=True)
test = datasets.CIFAR10("data", train=False, download=True)
knn = KNeighborsClassifier().fit(train.data.reshape(len(train.data), -1), train.targets)
print(knn.score(test.data.reshape(len(test.data), -1), test.targets))
"""


def test_knn_on_torchvision_arrays_is_traced_by_pixels(tmp_path, cache_dir):
    trace, out = run_probe(tmp_path, cache_dir, KNN_ON_TORCHVISION)
    m = trace["measurements"][0]
    assert m["part"] == "knn" and m["n"] == 100 and "the served cifar10 images" in m["method"]
    assert m["labels_agree"] == 1.0 and m["accuracy"] == pytest.approx(float(out.split()[-1]))


# ---------------------------------------------------------------- graded for real


@pytest.mark.slow
def test_reference_solution_scores_full_marks(grade_file):
    r = grade_file(PROJECT / "reference" / "program1" / "solution.py", 1, **SMALL)
    failed = [(c.id, c.message) for c in r.checks if not c.passed and c.weight > 0]
    assert r.status == Status.ok, r.status_message
    assert failed == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert r.dataset == "cifar10 (synthetic stand-in)"
    knn, net = (next(m for m in r.run.trace["measurements"] if m["part"] == p) for p in ("knn", "net"))
    assert knn["labels_agree"] == 1.0 and knn["accuracy"] == pytest.approx(knn["reported"])
    assert "own test-set transform" in net["method"] and net["n"] == 500


@pytest.mark.slow
def test_manual_program1_as_printed(grade_file, tmp_path):
    r = grade_file(FIXTURES / "manual" / "program1.py", 1, **SMALL)
    assert r.status == Status.ok, r.status_message
    for check_id in ("knn.fitted", "knn.accuracy", "net.layers", "net.trained", "static.steps"):
        assert check(r, check_id).passed, check(r, check_id).message
    knn = next(m for m in r.run.trace["measurements"] if m["part"] == "knn")
    printed = float(r.run.stdout.split("KNN Accuracy: ")[1].split()[0])
    assert printed == pytest.approx(knn["accuracy"], abs=0.005) and knn["n"] == 400
    assert "train_test_split" in knn["method"]
    printed = check(r, "parts.printed_match")
    assert printed.passed and set(printed.evidence) - {"figure from"} == {"knn", "net"}
    net = check(r, "net.trained")
    assert "2 epoch(s) (capped at 2 in quick mode)" in net.message and "SGD" in net.message
    assert "fc1" in json.dumps(r.run.trace["models"][0]) and check(r, "net.layers").evidence["params"] == 820874
    sheet = write_sheet(r, tmp_path / "sheet").read_text(encoding="utf-8")  # the torch trace renders
    assert "SimpleNet" in sheet and "KNN measures" in sheet


@pytest.mark.slow
def test_only_the_knn_part_cannot_reach_good(grade_file):
    knn_only = MANUAL.split("import torch\n")[0]
    r = grade_file(knn_only, 1, **SMALL)
    assert r.status == Status.ok, r.status_message
    assert check(r, "knn.fitted").passed and check(r, "knn.accuracy").passed
    missing = check(r, "net.trained")
    assert not missing.passed and "part b (the 3-layer network) is missing" in missing.message
    execution = next(a for a in r.attributes if a.attribute == "execution")
    assert execution.band == "Satisfactory" and execution.mark <= 9


@pytest.mark.slow
def test_only_the_network_part_is_capped_below_good_by_the_gate(grade_file):
    net_only = "import numpy as np\nimport torch\n" + MANUAL.split("import torch\n", 1)[1]
    r = grade_file(net_only, 1, **SMALL)
    assert r.status == Status.ok, r.status_message
    assert check(r, "net.trained").passed and check(r, "net.layers").passed
    missing = check(r, "knn.fitted")
    assert not missing.passed and "part a (KNN) is missing" in missing.message
    execution = next(a for a in r.attributes if a.attribute == "execution")
    # its checks alone would earn Good (10 or more of 20): the part-a gate keeps it Satisfactory
    assert execution.capped_by == "knn.fitted" and execution.mark == 9


@pytest.mark.slow
def test_network_that_never_steps_is_untrained(grade_file):
    src = MANUAL.replace("        optimizer.step()\n", "")
    assert src != MANUAL
    r = grade_file(src, 1, **SMALL)
    assert r.status == Status.ok, r.status_message
    trained = check(r, "net.trained")
    assert not trained.passed and "never took a step" in trained.message
    acc = check(r, "net.accuracy")
    assert not acc.passed and "never trained" in acc.message
    assert check(r, "knn.fitted").passed  # part a still counts
    assert any("serves one batch" in n for n in r.run.trace["notes"])  # quick cap without steps too
    execution = next(a for a in r.attributes if a.attribute == "execution")
    assert execution.band != "Good"


@pytest.mark.slow
def test_seed_lstm_with_undefined_dataset_is_an_error_naming_it(grade_file):
    seed = Path("/work/shared/seeds/000_c3b61284e14396b7.txt")
    text = seed.read_text() if seed.is_file() else ""
    start = text.find("# Import necessary libraries\nimport torch")
    end = text.find("\n", text.find("print(f'Epoch", start))
    src = text[start:end] if start >= 0 else LSTM_SEED
    r = grade_file(src, 1)
    assert r.status == Status.error
    assert "NameError" in r.status_message and "'dataset'" in r.status_message
    model = r.run.trace["models"][0]
    assert model["class"] == "SentimentAnalysisModel" and "LSTM" in [l["type"] for l in model["layers"]]
    assert not check(r, "run.completes").passed and not check(r, "net.trained").passed


# The seed's PyTorch LSTM (000_c3b61284e14396b7) as printed, for a checkout without the seeds.
LSTM_SEED = """
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import Dataset, DataLoader

class SentimentAnalysisModel(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim):
        super(SentimentAnalysisModel, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text):
        embedded = self.embedding(text)
        output, _ = self.rnn(embedded)
        return self.fc(output[:, -1, :])

model = SentimentAnalysisModel(vocab_size=10000, embedding_dim=100, hidden_dim=256, output_dim=2)
optimizer = optim.Adam(model.parameters(), lr=0.001)
criterion = nn.CrossEntropyLoss()
for epoch in range(10):
    model.train()
    total_loss = 0
    for batch in DataLoader(dataset, batch_size=32, shuffle=True):
        pass
"""


@pytest.mark.slow
def test_manual_program1_as_a_notebook(grade_file):
    import nbformat

    knn, net = MANUAL.split("import torch\n", 1)
    cells = [knn, "import torch\n" + net]
    nb = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))
    r = grade_file(nb, 1, name="program1.ipynb", **SMALL)
    assert r.status == Status.ok, r.status_message
    parts = {m["part"]: m for m in r.run.trace["measurements"]}
    assert set(parts) == {"knn", "net"} and parts["net"]["trained"]
    assert check(r, "net.trained").passed and check(r, "knn.fitted").passed


@pytest.mark.parametrize("first, second, expected", [
    ("nn.Linear(8, 4)", "nn.Linear(8, 5)", 45),  # as many tensors: the one with more elements
    ("nn.Linear(8, 4)", "nn.Linear(8, 4)", 36),  # as many elements too: the one made first
    ("nn.Linear(8, 5)", "nn.Linear(8, 4)", 45),
])
def test_one_optimizer_over_two_networks_is_filed_under_the_same_one_every_run(tmp_path, cache_dir, first, second,
                                                                                 expected):
    """An optimizer holding two sibling networks of as many tensors is filed under one of them
    by their sizes and the order they were made, not by the order of a set: the same program
    gets the same record every run."""
    source = f"""
import torch
from torch import nn
a, b = {first}, {second}
a.tag, b.tag = "first", "second"
opt = torch.optim.SGD(list(b.parameters()) + list(a.parameters()), lr=0.1)
for _ in range(3):
    opt.zero_grad()
    (a(torch.randn(16, 8)).sum() + b(torch.randn(16, 8)).sum()).backward()
    opt.step()
"""
    for run in range(3):
        (tmp_path / f"run{run}").mkdir()
        trace, _ = run_probe(tmp_path / f"run{run}", cache_dir, source, frameworks=("torch",))
        model = trace["models"][trace["fits"][0]["model"]]
        assert model["params"] == expected, model
