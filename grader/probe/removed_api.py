"""Keras 2-era APIs that Keras 3 removed or changed, with what to write instead.

Used twice: by static analysis (host, from the source text) and by the probe (to turn
the exception Keras 3 raises into a message that names the API and its replacement).
Pure data and stdlib only: this module is imported inside the sandbox.
"""

from __future__ import annotations

import re

# name: shown to the student; pattern: found in source; error: matched against the
# text of the exception Keras 3 raises; replacement: what to write instead.
# silent: the API runs but does something else than the student meant (always a fault);
# the others are faults only where they fail (the run stopped at them): where they still
# run (tf.keras keeps ImageDataGenerator and Tokenizer for old code), they are a hint.
REMOVED_APIS: list[dict[str, str]] = [
    {
        "api": "optimizer argument lr= (e.g. keras.optimizers.Adam(lr=0.001))",
        "pattern": r"optimizers\.\w+\([^)]*\blr\s*=",
        "error": r"Argument\(s\) not recognized: \{'lr'",
        "replacement": "learning_rate= (keras.optimizers.Adam(learning_rate=0.001)); "
                       "tf-keras accepts lr= but ignores it and trains with the default rate",
        "silent": True,
    },
    {
        "api": "keras.preprocessing.image.ImageDataGenerator (deprecated; Keras 3's own keras package has none)",
        "pattern": r"\bImageDataGenerator\b",
        "error": r"has no attribute 'ImageDataGenerator'|cannot import name 'ImageDataGenerator'",
        "replacement": "augmentation layers inside the model (keras.layers.RandomFlip, "
                       "RandomRotation, RandomTranslation) or tf.data; or the course's legacy "
                       "Keras 2 profile",
    },
    {
        "api": "Embedding(input_length=...)",
        "pattern": r"Embedding\([^)]*\binput_length\s*=",
        "error": r"Unrecognized keyword arguments.*input_length|input_length",
        "replacement": "leave input_length out (Keras 3 infers it); give keras.Input(shape=(n,))",
    },
    {
        "api": "model.fit_generator / evaluate_generator / predict_generator",
        "pattern": r"\.(fit|evaluate|predict)_generator\(",
        "error": r"has no attribute '(fit|evaluate|predict)_generator'",
        "replacement": "model.fit / evaluate / predict, which accept generators and datasets",
    },
    {
        "api": "model.predict_classes",
        "pattern": r"\.predict_classes\(",
        "error": r"has no attribute 'predict_classes'",
        "replacement": "np.argmax(model.predict(x), axis=-1)",
    },
    {
        "api": "keras.layers.experimental.preprocessing",
        "pattern": r"layers\.experimental\.preprocessing",
        "error": r"has no attribute 'experimental'",
        "replacement": "the same layers directly under keras.layers (e.g. keras.layers.RandomFlip)",
    },
    {
        "api": "keras.preprocessing.text.Tokenizer (deprecated; Keras 3's own keras package has none, "
               "tf.keras keeps it only for old code)",
        "pattern": r"preprocessing\.text\b",
        "error": r"No module named '[\w.]*preprocessing\.text'|cannot import name 'Tokenizer'",
        "replacement": "keras.layers.TextVectorization (adapt() it on the texts; get_vocabulary() "
                       "turns an id back into its word); or the course's legacy Keras 2 profile",
    },
    {
        "api": "keras.utils.np_utils.to_categorical",
        "pattern": r"np_utils",
        "error": r"np_utils",
        "replacement": "keras.utils.to_categorical",
    },
]


def find_in_source(source: str) -> list[dict[str, object]]:
    """Each removed API used in the source, with the first line it appears on and whether
    it silently does something else (`silent`)."""
    found = []
    for entry in REMOVED_APIS:
        m = re.search(entry["pattern"], source)
        if m:
            line = source.count("\n", 0, m.start()) + 1
            found.append({"api": entry["api"], "replacement": entry["replacement"], "line": line,
                          "silent": bool(entry.get("silent"))})
    return found


def explain_error(message: str) -> dict[str, str] | None:
    """The removed API an exception message points at, if any."""
    for entry in REMOVED_APIS:
        if re.search(entry["error"], message):
            return {"api": entry["api"], "replacement": entry["replacement"]}
    return None
