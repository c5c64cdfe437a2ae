"""NLTK data and spaCy pipelines served offline, installed when the program imports nltk or
spacy (a post-import hook registered by grader.probe.session).

* `nltk.download(id)` (punkt, punkt_tab, stopwords, wordnet, omw-1.4, the perceptron
  tagger, vader_lexicon, or a collection such as "popular") downloads nothing: the package
  is served from ``<cache>/nltk_data/`` where faculty staged the real one (`grader data
  stage nltk:ID FILE`), else a working stand-in is made (a Punkt model with no learned
  parameters, NLTK's English stop words, an empty WordNet whose lemmatizer returns words
  as they are, a tagger that tags every word NN, a small VADER lexicon). Asking for punkt
  also serves punkt_tab, which word_tokenize reads since NLTK 3.9.
* `spacy.load("en_core_web_sm")` (any trained pipeline's name, lang_type_genre_size) of a
  pipeline that is not installed loads the real one staged in ``<cache>/spacy/<name>/``
  (`grader data stage en_core_web_sm FILE`), else a stand-in: a blank pipeline of the
  language with a sentencizer, saved as a pipeline folder (no tagger, parser or entities).
  `spacy.cli.download(name)` serves it the same way.

Every package served is noted in the trace (trace["nlp_assets"], and the dataset label of a
program without a dataset), real or stand-in. What has neither ends the job with "the
program asks for X from the internet; stage it with `grader data stage X FILE`".
Stdlib at import time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from grader.probe.shims import asked_from_internet
from grader.probe.trace import Trace

STANDIN_VERSION = 1
NLTK_DIR = "nltk_data"  # <cache>/nltk_data: staged real packages, in NLTK's own layout
SPACY_DIR = "spacy"  # <cache>/spacy/<name>/: staged real pipelines (the folder with config.cfg)
PIPELINE = re.compile(r"^([a-z]{2,3})_(core|dep|ent|sent)_([a-z]+)_(sm|md|lg|trf)$")
PUNKT_ABBREVIATIONS = ("dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "e.g", "i.e", "inc", "jr", "sr", "no")
ENGLISH_STOPWORDS = (
    "i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him "
    "his himself she she's her hers herself it it's its itself they them their theirs themselves what which who "
    "whom this that that'll these those am is are was were be been being have has had having do does did doing a "
    "an the and but if or because as until while of at by for with about against between into through during "
    "before after above below to from up down in out on off over under again further then once here there when "
    "where why how all any both each few more most other some such no nor not only own same so than too very s t "
    "can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't "
    "doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't "
    "shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't").split()
VADER_WORDS = {"good": 1.9, "great": 3.1, "love": 3.2, "happy": 2.7, "nice": 1.8, "excellent": 2.7, "like": 1.5,
               "bad": -2.5, "terrible": -2.1, "hate": -2.7, "sad": -2.1, "awful": -2.0, "poor": -2.1, "worst": -3.1}


# ---------------------------------------------------------------- NLTK stand-ins


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_punkt_tab(root: Path) -> None:
    """A Punkt model with a few abbreviations and nothing learned: it splits sentences at
    . ! ? and word_tokenize works."""
    folder = root / "tokenizers" / "punkt_tab" / "english"
    for name in ("collocations.tab", "sent_starters.txt", "ortho_context.tab"):
        _write(folder / name, "")
    _write(folder / "abbrev_types.txt", "\n".join(PUNKT_ABBREVIATIONS) + "\n")


def make_stopwords(root: Path) -> None:
    _write(root / "corpora" / "stopwords" / "english", "\n".join(ENGLISH_STOPWORDS) + "\n")


def make_wordnet(root: Path) -> None:
    """An empty WordNet: synsets() finds nothing, the lemmatizer returns words unchanged."""
    folder = root / "corpora" / "wordnet"
    for pos in ("noun", "verb", "adj", "adv"):
        for name in (f"index.{pos}", f"data.{pos}", f"{pos}.exc"):
            _write(folder / name, "")
    _write(folder / "index.sense", "")
    _write(folder / "lexnames", "00\tadj.all\t3\n")


def make_omw(root: Path) -> None:
    _write(root / "corpora" / "omw-1.4" / "README", "stand-in: no other languages\n")


def make_tagger(root: Path) -> None:
    """An averaged perceptron with no weights: it tags every word NN."""
    name = "averaged_perceptron_tagger_eng"
    folder = root / "taggers" / name
    for part, value in (("weights", {}), ("tagdict", {}), ("classes", ["NN"])):
        _write(folder / f"{name}.{part}.json", json.dumps(value))


def make_vader(root: Path) -> None:
    """A small lexicon, zipped as NLTK ships it (VADER reads it inside the zip)."""
    import zipfile

    lines = [f"{word}\t{score}\t0.5\t[{round(score)}]" for word, score in VADER_WORDS.items()]
    target = root / "sentiment" / "vader_lexicon.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("vader_lexicon/vader_lexicon.txt", "\n".join(lines))


# package id -> (what is made, the stand-in maker)
NLTK_STANDINS: dict[str, Callable[[Path], None]] = {
    "punkt_tab": make_punkt_tab, "punkt": make_punkt_tab, "stopwords": make_stopwords, "wordnet": make_wordnet,
    "wordnet2021": make_wordnet, "omw-1.4": make_omw, "omw": make_omw, "averaged_perceptron_tagger": make_tagger,
    "averaged_perceptron_tagger_eng": make_tagger, "vader_lexicon": make_vader,
}
NLTK_COLLECTIONS = ("popular", "all", "book", "all-corpora", "all-nltk", "third-party")


def nltk_staged(package: str, cache_dir: Path | str) -> Path | None:
    """The staged real package (a folder or zip under <cache>/nltk_data/<category>/), if any."""
    root = Path(cache_dir) / NLTK_DIR
    if not root.is_dir() or not re.fullmatch(r"[\w.\-]+", package):
        return None
    found = [p for p in sorted(root.glob(f"*/{package}")) + sorted(root.glob(f"*/{package}.zip"))]
    return found[0] if found else None


# ---------------------------------------------------------------- spaCy stand-in


def make_spacy_standin(name: str, target: Path) -> None:
    """A blank pipeline of the name's language with a sentencizer, saved as a pipeline folder."""
    import spacy

    lang = PIPELINE.match(name).group(1)
    nlp = spacy.blank(lang)
    nlp.add_pipe("sentencizer")
    nlp.meta.update(name=name.split("_", 1)[1], version="0.0.0",
                    description=f"grader's synthetic stand-in for {name}: a blank {lang} pipeline with a sentencizer")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    nlp.to_disk(tmp)
    try:
        os.replace(tmp, target)
    except OSError:
        if not (target / "config.cfg").is_file():  # another job made it first: keep that one
            raise


# ---------------------------------------------------------------- serving


class NlpAssets:
    def __init__(self, trace: Trace, cache_dir: Path | str, scratch: Path | None = None):
        self.trace = trace
        self.cache_dir = Path(cache_dir)
        self.scratch = Path(scratch) if scratch else Path.home() / ".grader-nlp"
        self.record: list[dict[str, Any]] = trace.data.setdefault("nlp_assets", [])

    def standin_path(self, relative: str, make: Callable[[Path], None], done: str = "") -> Path:
        """<cache>/nlp/standin/v<N>/relative, made by make(path) unless `done` (a file
        inside) is there; the scratch folder when the cache cannot be written."""
        for base in (self.cache_dir / "nlp" / "standin", self.scratch / "standin"):
            target = base / f"v{STANDIN_VERSION}" / relative
            if (target / done).exists():
                return target
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                make(target)
                return target
            except OSError:
                continue
        raise OSError(f"no writable place for the stand-in {relative}")

    def served(self, kind: str, name: str, source: str) -> None:
        entry = {"kind": kind, "name": name, "source": source}
        if entry not in self.record:
            self.record.append(entry)
        label = "real" if source == "real" else "synthetic stand-in"
        self.trace.note(f"{kind} {name} ({label}) was served from the grader's cache")
        self._label_dataset()
        self.trace.save()

    def _label_dataset(self) -> None:
        current = self.trace["dataset"]
        if current is not None and current.get("kind") != "nlp":
            return
        names = ", ".join(f"{e['kind']} {e['name']}" + (" (synthetic stand-in)" if e["source"] == "standin" else "")
                          for e in self.record)
        self.trace["dataset"] = {"kind": "nlp", "name": "language data",
                                 "source": "standin" if any(e["source"] == "standin" for e in self.record) else "real",
                                 "description": f"language data {names}"}

    # ------------------------------------------------------------ NLTK

    def install_nltk(self, nltk: Any) -> None:
        original = nltk.downloader.Downloader.download
        if getattr(original, "grader_served", False):
            return
        assets = self

        @functools.wraps(original)
        def download(downloader=None, info_or_id=None, download_dir=None, quiet=False, *args, **kwargs):
            return assets.nltk_download(nltk, info_or_id, quiet)

        download.grader_served = True
        nltk.downloader.Downloader.download = download
        bound = functools.partial(download, None)
        nltk.download = nltk.downloader.download = bound

    def nltk_download(self, nltk: Any, info_or_id: Any, quiet: bool) -> bool:
        if info_or_id is None:
            raise asked_from_internet("NLTK's interactive downloader", "nltk:ID")
        ids = [info_or_id] if isinstance(info_or_id, str) else list(info_or_id)
        for package in ids:
            for name in (list(NLTK_STANDINS) if package in NLTK_COLLECTIONS else [package]):
                self.nltk_package(nltk, str(name), quiet)
        return True

    def nltk_package(self, nltk: Any, package: str, quiet: bool) -> None:
        if nltk_staged(package, self.cache_dir) is not None:
            self._nltk_path(nltk, self.cache_dir / NLTK_DIR)
            source = "real"
        elif package in NLTK_STANDINS:
            root = self.standin_path("nltk_data", lambda target: target.mkdir(parents=True, exist_ok=True))
            NLTK_STANDINS[package](root)
            if package == "punkt":
                NLTK_STANDINS["punkt_tab"](root)
            self._nltk_path(nltk, root, front=False)
            source = "standin"
        else:
            self.trace.note(f"the program asked NLTK to download {package!r}: it is not staged")
            self.trace.save()
            raise asked_from_internet(f"NLTK's {package!r} data", f"nltk:{package}")
        if not quiet:
            label = "" if source == "real" else " (synthetic stand-in)"
            print(f"[nltk_data] Package {package} served from the grader's cache{label}", file=sys.stderr)
        self.served("NLTK", package, source)

    @staticmethod
    def _nltk_path(nltk: Any, root: Path, front: bool = True) -> None:
        """Real packages are found before stand-ins: the staged folder goes first."""
        text = str(root)
        if text not in nltk.data.path:
            nltk.data.path.insert(0 if front else len(nltk.data.path), text)

    # ------------------------------------------------------------ spaCy

    def install_spacy(self, spacy: Any) -> None:
        original = spacy.load
        if getattr(original, "grader_served", False):
            return
        assets = self

        @functools.wraps(original)
        def load(name, *args, **kwargs):
            return original(assets.spacy_model(spacy, name), *args, **kwargs)

        load.grader_served = True
        spacy.load = load
        cli = sys.modules.get("spacy.cli")
        if cli is not None and hasattr(cli, "download"):
            cli.download = lambda model, *a, **k: assets.spacy_model(spacy, model) and None

    def spacy_model(self, spacy: Any, name: Any) -> Any:
        """What spacy.load should load for `name`: the name itself when it is installed or a
        path, the staged real pipeline, or the stand-in."""
        if not isinstance(name, str) or not PIPELINE.match(name) or spacy.util.is_package(name):
            return name
        real = Path(self.cache_dir) / SPACY_DIR / name
        if (real / "config.cfg").is_file():
            self.served("spaCy", name, "real")
            return real
        path = self.standin_path(f"spacy/{name}", lambda target: make_spacy_standin(name, target), "config.cfg")
        self.served("spaCy", name, "standin")
        return path


# ---------------------------------------------------------------- post-import hooks


def hook(trace: Trace, config: dict[str, Any], what: str) -> Callable[[Any], None]:
    """The post-import hook for nltk or spacy: installs the serving, never failing the
    program's import (a failure is noted)."""

    def installed(module: Any) -> None:
        try:
            assets = NlpAssets(trace, config["cache_dir"])
            (assets.install_nltk if what == "nltk" else assets.install_spacy)(module)
        except Exception as e:
            trace.note(f"serving {what} data could not be installed: {type(e).__name__}: {e}"[:500])
            trace.save()

    return installed
