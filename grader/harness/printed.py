"""What a program prints as its own test accuracy, read only where it is unambiguous.

A printed figure is compared with the measured accuracy to catch numbers written by
hand, so a misreading accuses a student of something they did not do. The reader
therefore says nothing when in doubt:

* `Test accuracy: 0.384`, `Accuracy = 38.4 %`, `{'loss': 2.06, 'accuracy': 0.384}`,
  `Accuracy of the network on the 10000 test images: 54 %` are read;
* a list is read only when its label names every entry in order:
  `Test loss and accuracy: [2.06, 0.384]` is [loss, accuracy], so 0.384; a bare
  `Accuracy: [2.06, 0.384]` or `[2.06, 0.384]` is not read;
* training, validation, top-k, balanced and per-class accuracies are not the test
  accuracy and are not read; a label naming two metrics for one number is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROGRESS_LINE = re.compile(r"step|━|=====|Epoch \d|val_|ETA", re.I)
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# np.float64(0.38), tensor(0.3840), tensor(0.38, device='cuda:0') print as their number
WRAPPED = re.compile(rf"\b(?:np\.|numpy\.)?(?:float(?:16|32|64)?|tensor)\(\s*({NUMBER})[^()]*\)")
# a value: a list or tuple of numbers, or one number (with its per cent sign)
VALUE = re.compile(rf"[\[(]\s*(?P<list>{NUMBER}(?:\s*,\s*{NUMBER})+)\s*,?\s*[\])]"
                   rf"|(?<![\w.])(?P<num>{NUMBER})(?P<pct>\s*%)?(?![\w.])(?!\s*\)?\s*[:=])")  # "(k=3):" is a label
# word edges that let "test_acc" and "val_loss" be read as words
A, Z = r"(?<![A-Za-z])", r"(?![A-Za-z])"
METRIC = re.compile(A + r"(?:acc(?:uracy)?|loss|precision|recall|f1|auc|r2|mae|mse|rmse|error|err)" + Z, re.I)
ACCURACY = re.compile(r"^acc", re.I)
# accuracies that are not the model's overall test accuracy
NOT_TEST = re.compile(A + r"(?:train(?:ing)?|val(?:id(?:ation)?)?|top[-_ ]?\d+|balanced|per[-_ ]class|"
                      r"(?:for|of) class|class[-_ ]?wise|baseline|chance|random|expected|target)" + Z, re.I)
# a number is a value when a label ends just before it ("accuracy: 0.5", "acc 0.5", "is 0.5")
LABEL_END = re.compile(r"(?:[:=]|->|\bis|\bwas|\bof|" + METRIC.pattern + r")[\s'\"]*$", re.I)
TEST = re.compile(A + r"(?:test(?:ing)?|overall|final)" + Z, re.I)


@dataclass
class PrintedAccuracy:
    value: float  # a fraction, 0..1
    label: str  # the words before the value
    line: str  # the printed line, shortened


def as_fraction(text: str, percent: bool) -> float | None:
    """0.384, 38.4 and 38.4 % all mean 38.4%; outside 0..100 is not an accuracy."""
    value = float(text)
    if percent or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def from_list(label: str, items: list[str]) -> float | None:
    """The accuracy in a printed list, when its label names each entry in order."""
    names = METRIC.findall(label)
    if len(names) != len(items) or NOT_TEST.search(label):
        return None
    where = [i for i, n in enumerate(names) if ACCURACY.match(n)]
    return as_fraction(items[where[0]], False) if len(where) == 1 else None


def from_number(label: str, text: str, percent: bool) -> float | None:
    """One printed number, when its label names the accuracy and nothing else."""
    names = METRIC.findall(label)
    if len(names) != 1 or not ACCURACY.match(names[0]) or NOT_TEST.search(label):
        return None
    return as_fraction(text, percent)


def accuracies_in_line(line: str) -> list[PrintedAccuracy]:
    """Each unambiguous accuracy in one printed line."""
    text = WRAPPED.sub(r"\1", line)
    found, label_start = [], 0
    for m in VALUE.finditer(text):
        label = text[label_start:m.start()]
        if m.group("num") and not m.group("pct") and not LABEL_END.search(label):
            continue  # a number inside a label ("on the 10000 test images"), not a value
        label_start = m.end()
        if m.group("list"):
            value = from_list(label, [x.strip() for x in m.group("list").split(",")])
        else:
            value = from_number(label, m.group("num"), bool(m.group("pct")))
        if value is not None:
            found.append(PrintedAccuracy(value, label.strip(" ,;|:=-'\"{"), line.strip()[:120]))
    return found


def printed_accuracies(stdout: str) -> list[PrintedAccuracy]:
    """Every unambiguous accuracy the program printed itself (not Keras' progress lines)."""
    found = []
    for line in stdout.splitlines():
        if not PROGRESS_LINE.search(line) and re.search(r"acc", line, re.I):
            found.extend(accuracies_in_line(line))
    return found


def skeleton(label: str) -> str:
    return re.sub(r"[^a-z]+", " ", label.lower()).strip()


def printed_accuracy(stdout: str) -> PrintedAccuracy | None:
    """The program's own test accuracy: the last one labelled test (or overall, final);
    otherwise the last one when every accuracy printed has the same label; otherwise
    none (several differently labelled accuracies: which is the test accuracy is a guess)."""
    found = printed_accuracies(stdout)
    labelled_test = [p for p in found if TEST.search(p.label)]
    if labelled_test:
        return labelled_test[-1]
    if found and len({skeleton(p.label) for p in found}) == 1:
        return found[-1]
    return None
