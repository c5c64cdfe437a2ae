"""Static analysis for Writeup: parses the source (never executes it), finds the steps the
manual's program shows, imports, and Keras 2-era APIs that Keras 3 removed."""

from __future__ import annotations

import ast
from pathlib import Path

from grader.models import StaticReport, SyntaxProblem
from grader.probe.notebook import CodeCell, NotebookError, code_cells, notebook_source
from grader.probe.removed_api import find_in_source

# A step is present when the source calls one of these names (as a function or a method).
STEP_CALLS: dict[str, set[str]] = {
    "load_data": {"load_data", "fetch_openml", "image_dataset_from_directory", "CIFAR10", "MNIST",
                  "ImageFolder", "read_csv", "load", "flow_from_directory", "get_word_index"},
    "build_model": {"Sequential", "Model", "Input", "Conv2D", "Dense", "resnet50", "LSTM",
                    "Bidirectional", "GRU", "SimpleRNN", "RNN", "Embedding", "KNeighborsClassifier",
                    "fasterrcnn_resnet50_fpn"},
    # PyTorch has no compile(): choosing the loss is its counterpart
    "compile": {"compile", "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "NLLLoss",
                "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy"},  # a loop's own
    "train": {"fit", "fit_generator", "train_on_batch", "step", "apply_gradients"},
    "evaluate": {"evaluate", "predict", "score", "accuracy_score", "evaluate_generator", "test_on_batch",
                 "predict_on_batch", "argmax", "SparseCategoricalAccuracy", "CategoricalAccuracy",  # a loop's own
                 "no_grad"},  # PyTorch evaluates under torch.no_grad()
    # a chatbot (Program 7): text to id sequences, the model's reply, a conversation
    "tokenize": {"fit_on_texts", "texts_to_sequences", "TextVectorization", "adapt", "pad_sequences",
                 "Tokenizer", "split"},
    "predict": {"predict", "predict_on_batch", "argmax"},
    # a GAN's generator run on fresh noise after training (DLPRAC activity 5)
    "generate": {"predict", "predict_on_batch", "no_grad", "inference_mode"},
    "chat": {"input"},
    # a pretrained vision model on the student's image (Programs 2 and 5)
    "replace_head": {"Linear"},
    "read_image": {"open", "imread", "load_img", "read_image"},
    "preprocess": {"Compose", "ToTensor", "to_tensor", "Normalize", "Resize", "PILToTensor"},
    "eval_mode": {"eval"},
    "draw_boxes": {"rectangle", "draw_bounding_boxes", "Rectangle"},
    # Program 1's two parts: a KNN classifier (scikit-learn), a fully-connected network (PyTorch)
    "build_knn": {"KNeighborsClassifier"},
    "build_network": {"Linear", "LazyLinear", "Dense"},
}
STEP_NAMES = {"load_data": "load the data", "build_model": "build the model",
              "compile": "compile the model", "train": "train (fit) the model",
              "evaluate": "evaluate on the test set", "tokenize": "turn the text into sequences of word ids",
              "predict": "predict a reply with the model",
              "generate": "generate samples with the trained generator", "chat": "chat with the user (an input() loop)",
              "replace_head": "replace the final layer (nn.Linear) to fit the task's classes",
              "read_image": "read the image", "preprocess": "turn the image into a tensor (transforms)",
              "eval_mode": "put the model in evaluation mode (model.eval())",
              "build_knn": "build the KNN classifier (KNeighborsClassifier)",
              "build_network": "build the network's fully-connected layers (nn.Linear)",
              "draw_boxes": "draw the detected boxes on the image"}


def read_source(path: Path) -> tuple[str, str]:
    """(source, how it was read); notebooks become their code cells joined."""
    if path.suffix == ".ipynb":
        source, _ = notebook_source(path)
        return source, "notebook code cells"
    return path.read_text(encoding="utf-8", errors="replace"), "script"


def syntax_problem(source: str, name: str, cell: CodeCell | None = None) -> SyntaxProblem | None:
    """Where the source does not parse, in the source's own lines (a notebook's: the
    cell's), or None."""
    try:
        ast.parse(source, filename=f"<{name}>")  # not a real file: Python takes the text from `source`
    except SyntaxError as e:
        lines = source.splitlines()
        text = lines[e.lineno - 1] if e.lineno and 0 < e.lineno <= len(lines) else (e.text or "")
        return SyntaxProblem(file=name, line=e.lineno, text=text.rstrip()[:200], message=e.msg,
                             cell=cell.number if cell else None, cell_first_line=cell.first_line if cell else "")
    return None


def notebook_apis(cells: list[CodeCell]) -> list[dict]:
    """Removed APIs in a notebook, each at its first cell and the line within it."""
    found: dict[str, dict] = {}
    for cell in cells:
        for api in find_in_source(cell.source):
            found.setdefault(api["api"], {**api, "cell": cell.number})
    return list(found.values())


def called_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                names.add(f.attr)
            elif isinstance(f, ast.Name):
                names.add(f.id)
    return names


def imported_modules(tree: ast.AST) -> list[str]:
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return sorted(mods)


def analyse(entry: Path, required_steps: list[str]) -> StaticReport:
    """What the program's source shows, without running it: whether it parses (a
    notebook cell by cell, as Jupyter runs it), the required steps, imports, removed APIs."""
    try:
        cells = code_cells(entry)[0] if entry.suffix == ".ipynb" else None
        source, _ = read_source(entry)
    except NotebookError as e:
        return StaticReport(parses=False, syntax_error=SyntaxProblem(
            file=entry.name, line=None, text="", message=str(e)))
    problems = ([syntax_problem(c.source, entry.name, c) for c in cells] if cells is not None
                else [syntax_problem(source, entry.name)])
    problem = next((p for p in problems if p), None)
    if problem:
        return StaticReport(parses=False, source_lines=source.count("\n") + 1, syntax_error=problem,
                            steps={s: False for s in required_steps})
    tree = ast.parse(source)
    calls = called_names(tree)
    return StaticReport(
        parses=True,
        steps={s: bool(STEP_CALLS.get(s, {s}) & calls) for s in required_steps},
        imports=imported_modules(tree),
        removed_apis=notebook_apis(cells) if cells is not None else find_in_source(source),
        source_lines=source.count("\n") + 1,
    )
