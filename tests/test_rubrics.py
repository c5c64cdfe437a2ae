"""Course and rubric files: the manual's scheme, and errors that name file and field."""

import shutil

import pytest
import yaml

from grader.course import RubricError, load_rubrics
from grader.paths import RUBRICS_DIR


@pytest.fixture()
def rubric_copy(tmp_path):
    folder = tmp_path / "20CSEL76"
    shutil.copytree(RUBRICS_DIR / "20CSEL76", folder)
    return folder


def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_course_file_expresses_the_manuals_scheme():
    r = load_rubrics()
    c = r.course
    record = c.table("record")
    assert {k: v.max for k, v in record.items()} == {"writeup": 5, "execution": 20, "viva": 5}
    assert record["execution"].bands == {"Good": (10, 20), "Satisfactory": (5, 9), "Poor": (0, 4)}
    assert record["viva"].manual and not record["writeup"].manual
    assert sum(v.max for v in c.table("internal").values()) == 40
    assert {k: v.max for k, v in c.table("internal", alternative=True).items()} == {"writeup": 5, "execution": 30, "viva": 5}
    assert [p.max for p in c.see.parts] == [60, 40] and c.see.scale_to == 50
    assert c.cie.max == 50 and [x.max for x in c.cie.components] == [30, 20]
    assert c.pass_rule.cie_min_fraction == 0.4 == c.pass_rule.see_min_fraction
    assert {3, 4} <= set(r.programs)


def test_rounding_rule_is_half_up_in_one_place():
    c = load_rubrics().course
    assert c.rounding.apply(2.5) == 3 and c.rounding.apply(12.49) == 12


def test_missing_field_is_named(rubric_copy):
    edit(rubric_copy / "program3.yaml", lambda d: d.pop("title"))
    with pytest.raises(RubricError) as e:
        load_rubrics(folder=rubric_copy)
    assert "program3.yaml" in str(e.value) and "field title" in str(e.value)


def test_accuracy_check_without_thresholds_is_named(rubric_copy):
    edit(rubric_copy / "program3.yaml", lambda d: d.pop("thresholds"))
    with pytest.raises(RubricError) as e:
        load_rubrics(folder=rubric_copy)
    assert "program3.yaml" in str(e.value) and "needs thresholds" in str(e.value)


def test_unknown_post_run_step_is_named(rubric_copy):
    edit(rubric_copy / "program3.yaml", lambda d: d.update(probe={"no_such_step": {}}))
    with pytest.raises(RubricError) as e:
        load_rubrics(folder=rubric_copy)
    assert "field probe.no_such_step" in str(e.value)


def test_wrong_type_is_named(rubric_copy):
    edit(rubric_copy / "program4.yaml", lambda d: d["checks"][0].update(weight="heavy"))
    with pytest.raises(RubricError) as e:
        load_rubrics(folder=rubric_copy)
    assert "program4.yaml" in str(e.value) and "checks.0.weight" in str(e.value)


def test_unknown_check_and_band_are_named(rubric_copy):
    edit(rubric_copy / "program3.yaml", lambda d: d["checks"][1].update(id="static.typo"))
    with pytest.raises(RubricError, match=r"checks\.1\.id: no check named 'static.typo'"):
        load_rubrics(folder=rubric_copy)
    shutil.copy(RUBRICS_DIR / "20CSEL76" / "program3.yaml", rubric_copy / "program3.yaml")
    edit(rubric_copy / "program3.yaml", lambda d: d["checks"][0].update(gate="Excellent"))
    with pytest.raises(RubricError, match="unknown band 'Excellent'"):
        load_rubrics(folder=rubric_copy)


def test_band_outside_maximum_and_bad_yaml(rubric_copy):
    edit(rubric_copy / "course.yaml", lambda d: d["rubric_tables"]["record"]["writeup"]["bands"].update(Good=[4, 6]))
    with pytest.raises(RubricError, match=r"(?s)course.yaml.*rubric_tables.record.writeup.*band Good"):
        load_rubrics(folder=rubric_copy)
    (rubric_copy / "course.yaml").write_text("course: [unclosed")
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubrics(folder=rubric_copy)


def test_version_changes_with_the_rubric(rubric_copy):
    before = load_rubrics(folder=rubric_copy).version(3)
    edit(rubric_copy / "program3.yaml", lambda d: d["thresholds"]["standin"].update(quick=0.4))
    after = load_rubrics(folder=rubric_copy)
    assert after.version(3) != before and after.program(3).threshold("standin", "quick") == 0.4
