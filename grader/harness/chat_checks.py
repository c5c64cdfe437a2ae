"""Checks for a chatbot (Program 7): the response function answers scripted prompts with
text (from the probe's post-run "chat" step), the program's own chat loop replies and ends
on the scripted stdin, and the replies differ between prompts."""

from __future__ import annotations

import re
from typing import Any

from grader.harness.checks import PROGRESS_LINE
from grader.harness.registry import Context, Outcome, check
from grader.probe.chat import MARKER

NO_FUNCTION_HINT = ("define a function such as generate_response(input_text) that returns the bot's reply "
                    "as text, as the manual's program does, and call it from the chat loop")


def chat_result(ctx: Context) -> dict[str, Any] | None:
    return (ctx.trace.get("post_run") or {}).get("chat")


def not_called(ctx: Context) -> Outcome:
    """Why there is no post-run result, or no function: the run never got that far."""
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected")
    return Outcome(False, f"not judged: the program did not finish ({ctx.run.status.value}), so its response "
                          "function could not be called; see \"The program runs to the end\"",
                   hint="make the program run to the end first")


def quote(text: Any, limit: int = 40) -> str:
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def failure(reply: dict[str, Any]) -> str | None:
    """Why a reply does not count as an answer, or None when it does."""
    if reply.get("error"):
        return reply["error"]
    if reply.get("type") != "str":
        return f"returned {reply.get('reply')} ({reply.get('type')}), not text"
    if not reply.get("reply", "").strip():
        return "returned empty text"
    return None


@check("chat.replies", "The response function answers with text")
def replies(ctx: Context, params: dict) -> Outcome:
    result = chat_result(ctx)
    if result is None:
        return not_called(ctx)
    if result.get("error"):
        return Outcome(False, f"the grader could not put the prompts to the program: {result['error']}",
                       flag="chat post-run step failed: faculty should review")
    name, how = result.get("function"), result.get("found_by")
    evidence = {"function": name, "found_by": how, "replies": result.get("replies", []),
                "tried": result.get("tried", [])}
    if not name and not ctx.ran_ok:
        return not_called(ctx)
    if not name:
        tried = "; ".join(f"{t['name']}: {t['outcome']}" for t in result.get("tried", []))
        return Outcome(False, "no response function: looked for " + ", ".join(result.get("looked_for", [])) +
                       " and for a function of the program that takes one text and returns text" +
                       (f" (tried {tried})" if tried else ""), hint=NO_FUNCTION_HINT, evidence=evidence)
    answers = result.get("replies", [])
    if not answers:
        return Outcome(False, "the rubric gives no prompts to put to the response function",
                       flag="rubric: probe.chat.prompts is empty")
    bad = [(r["prompt"], failure(r)) for r in answers if failure(r)]
    good = [r for r in answers if not failure(r)]
    shown = "; ".join(f"{quote(r['prompt'])} → {quote(r['reply'])}" for r in good[:4])
    head = f"{name}() (found {how}) answered {len(good)}/{len(answers)} prompts with text"
    if not bad:
        return Outcome(True, f"{head}: {shown}", evidence=evidence)
    why = "; ".join(f"{quote(p)}: {w}" for p, w in bad[:3])
    returns_none = all(r.get("type") == "NoneType" for r in answers)
    hint = ("return the reply (e.g. `return predicted_word`) instead of printing it" if returns_none else
            "make the function return the reply as a string for any text, including words it never saw")
    return Outcome(False, f"{head}; failed for {why}", score=len(good) / len(answers), hint=hint,
                   evidence=evidence)


@check("chat.varied", "Different prompts get different replies")
def varied(ctx: Context, params: dict) -> Outcome:
    result = chat_result(ctx)
    if result is None:
        return not_called(ctx)
    texts = [r["reply"].strip().lower() for r in result.get("replies", []) if not failure(r)]
    if len(texts) < 2:
        return Outcome(False, "fewer than two text replies to compare", evidence={"replies": texts})
    distinct = sorted(set(texts))
    if len(distinct) > 1:
        return Outcome(True, f"{len(distinct)} different replies to {len(texts)} prompts",
                       evidence={"replies": texts})
    return Outcome(False, f"every prompt got the same reply ({quote(distinct[0])})", evidence={"replies": texts},
                   hint="make the reply depend on the user's text (predict from the encoded input)",
                   flag=f"chatbot gives the same reply {quote(distinct[0])} to all {len(texts)} prompts")


# ---------------------------------------------------------------- the program's own loop


def exchanges(stdout: str, lines: list[str]) -> list[tuple[str, list[str]]]:
    """For each scripted line the program read, the output that followed it (Keras' progress
    lines left out), up to the next line it read or the probe's post-run marker."""
    out: list[tuple[str, list[str]]] = []
    pending = list(lines)
    for text in stdout.split(MARKER)[0].splitlines():
        if pending and text.rstrip().endswith(pending[0]):  # the shim echoes each line it serves
            out.append((pending.pop(0), []))
        elif out and text.strip() and not PROGRESS_LINE.search(text):
            out[-1][1].append(text.strip())
    return out


LABEL = re.compile(r"^\s*[\w ]{0,20}:")  # "Chatbot:", "User:", "You:"


def answered(prompt: str, output: list[str]) -> bool:
    """Something besides a label and the user's own words was printed after the prompt
    ("User: hi" is an echo; "Chatbot: you said hi" is a reply)."""
    words = prompt.strip().lower()
    rest = [LABEL.sub("", line.lower().replace(words, "", 1)) for line in output]
    return any(re.search(r"\w", r) for r in rest)


@check("chat.loop", "The chat loop replies and ends on the scripted input")
def loop(ctx: Context, params: dict) -> Outcome:
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected")
    used = (ctx.trace.get("stdin") or {}).get("used", 0)
    scripted = ctx.rubric.stdin
    exit_kind = (ctx.trace.get("exit") or {}).get("kind")
    if used == 0:
        if not ctx.ran_ok:
            return not_called(ctx)
        return Outcome(False, "the program never asked for input(): no chat loop ran",
                       hint="chat in a loop: read the user's line with input(), print the reply, stop on 'exit'")
    ended = ctx.ran_ok and exit_kind != "stdin_exhausted"
    prompts = scripted[:used - 1] if ended else scripted[:used]  # the last line read ended a finished loop
    seen = dict(exchanges(ctx.run.stdout, scripted[:used]))
    replied = [p for p in prompts if answered(p, seen.get(p, []))]
    share = len(replied) / len(prompts) if prompts else 1.0
    evidence = {"lines_read": scripted[:used], "replied_to": replied, "ended_on": scripted[used - 1] if ended else None,
                "exit": exit_kind}
    problems = []
    if len(replied) < len(prompts):
        missed = [p for p in prompts if p not in replied]
        problems.append(f"nothing was printed in reply to {', '.join(map(quote, missed[:3]))}")
    if not ended:
        problems.append("the loop did not end: it called input() again after the scripted lines "
                        f"({', '.join(map(quote, scripted))}) ran out" if exit_kind == "stdin_exhausted"
                        else f"the program stopped ({ctx.run.status.value}) during the chat")
    summary = f"read {used} line(s), replied to {len(replied)}/{len(prompts)}"
    if not problems:
        return Outcome(True, f"{summary}, and ended on {quote(scripted[used - 1])}", evidence=evidence)
    return Outcome(False, f"{summary}; " + "; ".join(problems), score=0.5 * share + 0.5 * ended,
                   hint="print each reply, and leave the loop when the user types 'exit' "
                        "(while user_input != 'exit': …)", evidence=evidence)
