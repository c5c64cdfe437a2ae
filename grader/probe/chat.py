"""Post-run step for a chatbot: finds the program's response function and puts the rubric's
prompts to it, each call under a time limit and with input() blocked, recording the replies.

Runs inside the sandbox after the program has ended (see session.AFTER_RUN); stdlib only.
Rubric: `probe: {chat: {names: [...], prompts: [...], timeout_s: 10, budget_s: 40}}`: each call
is limited to timeout_s, all of them together to budget_s, so that a hanging function cannot
push the whole job past the runner's time limit.
"""

from __future__ import annotations

import builtins
import inspect
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable

# Printed before the first call, so the host can tell the program's own output from ours.
MARKER = "[grader] the chat prompts are put to the response function from here on"
NAMES = ["generate_response", "get_response", "respond", "chatbot_response", "reply", "chat", "response",
         "answer", "predict_response", "bot_response", "chatbot"]
# What a response function's code mentions, as opposed to a text helper (clean_text, tokenize).
MODEL_WORDS = {"predict", "model", "argmax", "generate", "generate_response"}
REPLY_CAP = 200


class CallTimeout(Exception):
    """The response function ran past the per-call limit."""


class AsksForInput(Exception):
    """The function called input(): it is a chat loop, not a function that returns a reply."""


def after_run(session, params: dict[str, Any]) -> dict[str, Any]:
    namespace = session.namespace or {}
    prompts = [str(p) for p in params.get("prompts", [])]
    limit = Limit(float(params.get("timeout_s", 10)), float(params.get("budget_s", 40)))
    names = list(params.get("names", NAMES))
    result: dict[str, Any] = {"looked_for": names, "function": None, "found_by": None, "replies": []}
    print("\n" + MARKER, flush=True)
    with blocked_input():
        fn, name, how, tried = find_function(namespace, names, prompts[0] if prompts else "hello", limit)
        result["tried"] = tried
        if fn is None:
            return result
        result.update(function=name, found_by=how)
        result["replies"] = [ask(fn, p, limit) for p in prompts]
    return result


class Limit:
    """Seconds a call may take: the per-call limit, or what is left of the whole budget."""

    def __init__(self, per_call: float, budget: float):
        self.per_call = per_call
        self.deadline = time.monotonic() + budget

    def next_call(self) -> float:
        return min(self.per_call, self.deadline - time.monotonic())


# ---------------------------------------------------------------- finding the function


def user_functions(namespace: dict[str, Any]) -> dict[str, Callable]:
    """Functions the program itself defined (script or notebook: module '__main__')."""
    return {k: v for k, v in namespace.items()
            if inspect.isfunction(v) and getattr(v, "__module__", None) == "__main__" and not k.startswith("__")}


def by_name(namespace: dict[str, Any], names: list[str]) -> list[tuple[str, Callable]]:
    """The named functions, then same-named methods of the program's own objects (bot.respond)."""
    is_code = lambda v: inspect.isfunction(v) or inspect.ismethod(v)  # noqa: E731  (a model is callable too)
    found = [(n, namespace[n]) for n in names if is_code(namespace.get(n))]
    for var, obj in namespace.items():
        if inspect.isclass(obj) or inspect.isfunction(obj) or type(obj).__module__ != "__main__":
            continue
        found += [(f"{var}.{n}", m) for n in names if inspect.ismethod(m := attribute(obj, n))]
    return found


def attribute(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property of the program's own class that fails
        return None


def takes_one_text(fn: Callable) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return bool(positional or any(p.kind == p.VAR_POSITIONAL for p in params)) and len(required) <= 1


def uses_model(fn: Callable, functions: dict[str, Callable]) -> bool:
    """Its code, or that of a program function it calls, mentions the model or a prediction."""
    names = set(getattr(getattr(fn, "__code__", None), "co_names", ()))
    callees = [functions[n] for n in names if n in functions and functions[n] is not fn]
    return bool(names & MODEL_WORDS) or any(
        set(c.__code__.co_names) & MODEL_WORDS for c in callees)


def find_function(namespace: dict[str, Any], names: list[str], probe_text: str,
                  limit: Limit) -> tuple[Callable | None, str | None, str | None, list[dict]]:
    """(function, its name, how it was found, what was tried). By name first (taking one
    argument); else by signature: a program function taking one argument that returns text
    for a text input, those that use the model tried first."""
    tried: list[dict] = []
    for name, fn in by_name(namespace, names):
        if takes_one_text(fn):
            return fn, name, "by name", tried
        tried.append({"name": name, "outcome": "does not take exactly one text argument"})
    functions = user_functions(namespace)
    candidates = [(n, f) for n, f in functions.items() if takes_one_text(f) and n not in {t["name"] for t in tried}]
    candidates.sort(key=lambda nf: not uses_model(nf[1], functions))  # stable: definition order kept
    for name, fn in candidates[:8]:
        reply = ask(fn, probe_text, limit)
        if reply["type"] == "str" and reply["reply"].strip():
            how = "by signature (a function of the program taking one text and returning text"
            return fn, name, how + (", using the model)" if uses_model(fn, functions) else ")"), tried
        tried.append({"name": name, "outcome": reply["error"] or f"returned {reply['type']}"})
    return None, None, None, tried


# ---------------------------------------------------------------- calling it


def ask(fn: Callable, prompt: str, limit: Limit) -> dict[str, Any]:
    started = time.monotonic()
    record: dict[str, Any] = {"prompt": prompt, "reply": None, "type": None, "error": None}
    timeout_s = limit.next_call()
    if timeout_s < 0.1:
        record.update(error="not asked: the time for all the prompts together ran out", seconds=0.0)
        return record
    try:
        with time_limit(timeout_s):
            value = fn(prompt)
        record["type"] = type(value).__name__
        record["reply"] = value[:REPLY_CAP] if isinstance(value, str) else repr(value)[:REPLY_CAP]
    except CallTimeout:
        record["error"] = f"did not return within {timeout_s:.3g} s"
    except AsksForInput:
        record["error"] = "called input(): it waits for the user instead of returning a reply"
    except BaseException as e:  # SystemExit and KeyboardInterrupt from student code too
        record["error"] = f"{type(e).__name__}: {e}"[:300]
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


@contextmanager
def blocked_input():
    original = builtins.input

    def refuse(prompt: str = "") -> str:
        raise AsksForInput()

    builtins.input = refuse
    try:
        yield
    finally:
        builtins.input = original


@contextmanager
def time_limit(seconds: float):
    """SIGALRM where it can be used (the main thread, as in a script or a kernel cell);
    elsewhere the runner's own time limit still ends a call that never returns."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise CallTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
