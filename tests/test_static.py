"""Static analysis never runs code: syntax errors, required steps, removed APIs."""

from pathlib import Path

from grader.static import analyse

FIXTURES = Path(__file__).parent / "fixtures"
STEPS = ["load_data", "build_model", "compile", "train", "evaluate"]


def test_manual_program3_has_every_step():
    r = analyse(FIXTURES / "manual" / "program3.py", STEPS)
    assert r.parses and all(r.steps.values())
    assert {"tensorflow"} <= set(r.imports) and r.removed_apis == []


def test_syntax_error_names_file_line_and_text():
    r = analyse(FIXTURES / "bad" / "syntax_error.py", STEPS)
    assert not r.parses
    e = r.syntax_error
    source_line = (FIXTURES / "bad" / "syntax_error.py").read_text().splitlines()[e.line - 1]
    assert e.file == "syntax_error.py" and e.text.strip() == source_line.strip()


def test_missing_steps_are_listed(tmp_path):
    p = tmp_path / "p.py"
    p.write_text("from tensorflow import keras\nm = keras.Sequential([])\nm.compile(loss='mse')\n")
    r = analyse(p, STEPS)
    assert r.steps == {"load_data": False, "build_model": True, "compile": True, "train": False, "evaluate": False}


def test_manual_program4_removed_apis_found_with_lines():
    r = analyse(FIXTURES / "manual" / "program4.py", STEPS)
    apis = {a["api"]: a for a in r.removed_apis}
    assert any(a.startswith("keras.preprocessing.image.ImageDataGenerator") for a in apis)
    lr = next(a for a in r.removed_apis if a["api"].startswith("optimizer argument lr"))
    assert "learning_rate" in lr["replacement"]
    src = (FIXTURES / "manual" / "program4.py").read_text().splitlines()
    assert "lr=" in src[lr["line"] - 1]


def test_notebook_cells_are_analysed_and_bad_json_is_named(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("!pip install x\nimport keras"),
                                         nbformat.v4.new_code_cell("(a, b), (c, d) = keras.datasets.mnist.load_data()")])
    p = tmp_path / "program3.ipynb"
    nbformat.write(nb, p)
    r = analyse(p, STEPS)
    assert r.parses and r.steps["load_data"] and not r.steps["train"]
    bad = analyse(FIXTURES / "bad" / "not_json.ipynb", STEPS)
    assert not bad.parses and "not JSON" in bad.syntax_error.message
