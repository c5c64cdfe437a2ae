"""Program 7 (a chatbot with a bidirectional LSTM): the manual's program under both Keras
flavours, the reference solution, and wrong submissions, each graded for real; the chat
post-run step calling the program's response function in a script and in a notebook."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, PROJECT, check
from grader.models import Status

MANUAL = (FIXTURES / "manual" / "program7.py").read_text()
PROMPTS = 5  # probe.chat.prompts in rubrics/20CSEL76/program7.yaml


def replace(old: str, new: str, source: str = MANUAL) -> str:
    assert old in source, old
    return source.replace(old, new)


def notebook(cells: list[str]) -> str:
    import nbformat

    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))


def failed(result) -> list[tuple[str, str]]:
    return [(c.id, c.message) for c in result.checks if not c.passed and c.weight > 0]


# ---------------------------------------------------------------- reading the conversation


def test_replies_read_from_the_manuals_printed_conversation():
    """The manual's printed output (its input() lines echoed as the scripted stdin echoes
    them): each line read is followed by the bot's reply, "User: …" is only an echo."""
    from grader.harness.chat_checks import answered, exchanges

    stdout = """Epoch 100/100
1/1 [=====] - 0s 19ms/step - loss: 1.4191 - accuracy: 0.8500
User: Hello
Chatbot: a
You: how are you
1/1 [=====] - 0s 22ms/step
User: how are you
Chatbot: you
You: im fine
User: im fine
You: what is a
User: what is a
Chatbot: chatbot
You: exit
"""
    seen = exchanges(stdout, ["how are you", "im fine", "what is a", "exit"])
    assert [p for p, _ in seen] == ["how are you", "im fine", "what is a", "exit"]
    assert seen[0][1] == ["User: how are you", "Chatbot: you"]  # progress line left out
    assert [answered(p, out) for p, out in seen[:3]] == [True, False, True]


def test_method_of_the_programs_own_bot_object_is_found_by_name(tmp_path):
    """`bot.respond(text)` on an object of the program's own class counts; a failing
    property of that class does not stop the search; a chat() without an argument is skipped."""
    import runpy

    from grader.probe import chat
    from grader.probe.session import Session
    from grader.probe.trace import Trace

    program = tmp_path / "bot.py"
    program.write_text("""
class Bot:
    @property
    def reply(self):
        raise RuntimeError("not ready")

    def respond(self, text):
        return "you said " + text

def chat():
    while input("You: ") != "exit":
        pass

bot = Bot()
""")
    session = Session({}, Trace(tmp_path / "trace.json"), namespace=runpy.run_path(str(program), run_name="__main__"))
    result = chat.after_run(session, {"names": ["chat", "reply", "respond"], "prompts": ["hi", "bye"]})
    assert result["function"] == "bot.respond" and result["found_by"] == "by name"
    assert result["tried"] == [{"name": "chat", "outcome": "does not take exactly one text argument"}]
    assert [r["reply"] for r in result["replies"]] == ["you said hi", "you said bye"]


# ---------------------------------------------------------------- full marks


@pytest.mark.slow
def test_reference_solution_scores_full_marks(grade_file):
    r = grade_file(PROJECT / "reference" / "program7" / "solution.py", 7)
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert r.dataset == ""  # the program brings its own ten lines
    replies = r.run.trace["post_run"]["chat"]["replies"]
    assert len(replies) == PROMPTS and all(x["type"] == "str" and x["reply"] for x in replies)


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["keras3", "legacy"])
def test_manual_program7_as_printed(grade_file, rubrics, flavour):
    """tf.keras still serves Tokenizer under Keras 3 (kept for old code), so the manual's
    program runs under either flavour; the deprecated APIs that still run are a hint, not a lost mark."""
    rubrics.course.keras_flavour = flavour
    r = grade_file(FIXTURES / "manual" / "program7.py", 7, rubrics=rubrics)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["frameworks"]["keras_flavour"] == flavour
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    api = check(r, "static.current_api")
    assert api.passed and "Tokenizer" in api.message and "input_length" in api.message and "TextVectorization" in api.message
    assert check(r, "model.structure").message == "3 layers: Embedding → Bidirectional(LSTM) → Dense"
    assert r.run.trace["fits"][0]["epochs_run"] == 100  # the quick cap is the manual's own count
    replies = check(r, "chat.replies")
    assert replies.passed and replies.message.startswith(f"generate_response() (found by name) answered {PROMPTS}/{PROMPTS}")
    loop = check(r, "chat.loop")
    assert loop.passed and loop.evidence["ended_on"] == "exit"
    assert loop.evidence["replied_to"] == ["how are you", "im fine", "what is a", "what's your name?"]
    assert "Chatbot:" in r.run.stdout


@pytest.mark.slow
def test_tokenizer_from_keras_itself_is_named_with_its_replacement(grade_file):
    r = grade_file(replace("from tensorflow.keras.preprocessing.text import", "from keras.preprocessing.text import"), 7)
    assert r.status == Status.error
    assert "keras.preprocessing.text" in r.status_message and "TextVectorization" in r.status_message
    assert r.marks["execution"] <= 4  # did not run: below Satisfactory


# ---------------------------------------------------------------- wrong submissions


@pytest.mark.slow
def test_one_way_lstm_is_named_and_keeps_execution_below_good(grade_file):
    r = grade_file(replace("tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(20))", "tf.keras.layers.LSTM(20)"), 7)
    assert r.status == Status.ok, r.status_message
    c = check(r, "model.structure")
    assert not c.passed
    assert "no bidirectional LSTM layer" in c.message and "the model has Embedding → LSTM → Dense" in c.message
    assert "Bidirectional" in c.hint
    assert check(r, "chat.replies").passed  # the rest works: the gate alone holds the mark down
    assert r.marks["execution"] == 9 and r.attributes[1].capped_by == "model.structure"


@pytest.mark.slow
def test_reply_printed_instead_of_returned(grade_file):
    r = grade_file(replace("    return predicted_word", "    print(predicted_word)"), 7)
    assert r.status == Status.ok, r.status_message
    c = check(r, "chat.replies")
    assert not c.passed and c.score == 0
    assert "answered 0/5" in c.message and "returned None (NoneType), not text" in c.message
    assert "return the reply" in c.hint
    assert check(r, "chat.loop").passed  # the loop still prints something after each line
    assert r.marks["execution"] == 16


@pytest.mark.slow
def test_no_response_function_and_a_loop_without_exit(grade_file):
    """Everything inline in `while True: input()`: no function to call, and the loop only
    ends because the scripted lines run out."""
    head, _ = MANUAL.split("# Function to generate a response")
    source = head + """
while True:
    seq = pad_sequences(tokenizer.texts_to_sequences([input("You: ")]), maxlen=max_sequence_length - 1)
    print("Chatbot:", tokenizer.index_word.get(int(np.argmax(model.predict(seq)[0])), "?"))
"""
    r = grade_file(source, 7)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["exit"]["kind"] == "stdin_exhausted"
    replies = check(r, "chat.replies")
    assert not replies.passed and replies.message.startswith("no response function: looked for generate_response")
    assert "generate_response(input_text)" in replies.hint
    loop = check(r, "chat.loop")
    assert not loop.passed and "the loop did not end" in loop.message and loop.score == 0.5
    assert loop.evidence["replied_to"] == ["how are you", "im fine", "what is a", "what's your name?", "exit",
                                           "quit", "bye"]
    assert r.marks["execution"] == 15  # 20 - 4 (no function) - 1.5 (half of chat.loop), rounded half up


@pytest.mark.slow
def test_calls_are_time_limited_and_may_not_read_input(grade_file, rubrics):
    """A bot without a model, its answers chosen by the prompt: two hang (the second one
    gets what is left of the budget), one calls input(), and the last is never asked."""
    rubrics.programs[7].probe["chat"].update(timeout_s=1.5, budget_s=2.5)
    source = '''
def generate_response(text):
    if "joke" in text.lower() or "hello" in text.lower():
        while True:
            pass
    if text == "How are you?":
        return input("fine, and you? ")
    return "you said " + text

user_input = input("You: ")
while user_input != "exit":
    print("Bot:", generate_response(user_input))
    user_input = input("You: ")
'''
    r = grade_file(source, 7, rubrics=rubrics)
    assert r.status == Status.ok, r.status_message
    replies = {x["prompt"]: x for x in r.run.trace["post_run"]["chat"]["replies"]}
    assert replies["Hello"]["error"] == "did not return within 1.5 s" and 1.4 < replies["Hello"]["seconds"] < 4
    assert "called input()" in replies["How are you?"]["error"]
    assert replies["What's your name?"]["reply"] == "you said What's your name?"
    assert replies["Tell me a joke"]["error"].startswith("did not return within")
    assert replies["Tell me a joke"]["seconds"] < 1.4  # only what was left of the 2.5 s
    assert replies["good morning"]["error"].startswith("not asked")
    c = check(r, "chat.replies")
    assert not c.passed and c.score == pytest.approx(1 / 5) and "answered 1/5" in c.message
    loop = check(r, "chat.loop")
    assert loop.passed and loop.evidence["replied_to"] == ["how are you", "im fine", "what is a", "what's your name?"]
    assert not check(r, "model.structure").passed and not check(r, "framework.any_of").passed


@pytest.mark.slow
def test_a_program_that_stops_early_is_not_judged_on_its_chat(grade_file):
    r = grade_file("training_data = ['Hello', 'Hi']\ntraining_data.fit_on_texts()\n", 7)
    assert r.status == Status.error
    for check_id in ("chat.replies", "chat.loop"):
        assert check(r, check_id).message.startswith("not judged: the program did not finish (error)")


# ---------------------------------------------------------------- notebooks


@pytest.mark.slow
def test_notebook_function_found_by_signature_and_wrapped_gru_named(grade_file):
    """The kernel's namespace is searched: `bot_reply` is no known name, but it is the one
    program function that takes a text and returns text. The model wraps a GRU."""
    head, rest = MANUAL.split("# Function to generate a response")
    function, _ = rest.split("# Chat with the bot")
    head = replace("Bidirectional(tf.keras.layers.LSTM(20))", "Bidirectional(tf.keras.layers.GRU(20))", head)
    nb = notebook([head, "def count_words(text, minimum):\n    return len(text.split()) >= minimum",
                   function.replace("def generate_response(", "def bot_reply("), "print(bot_reply('Hello'))"])
    r = grade_file(nb, 7, name="program7.ipynb")
    assert r.status == Status.ok, r.status_message
    c = check(r, "chat.replies")
    assert c.passed and c.evidence["function"] == "bot_reply" and c.evidence["found_by"].startswith("by signature")
    s = check(r, "model.structure")
    assert not s.passed and "the model has Embedding → Bidirectional(GRU) → Dense" in s.message
    assert check(r, "chat.loop").message == "the program never asked for input(): no chat loop ran"


@pytest.mark.slow
def test_notebook_chat_loop_reads_the_scripted_lines(grade_file):
    head, rest = MANUAL.split("# Function to generate a response")
    function, loop = rest.split("# Chat with the bot")
    r = grade_file(notebook([head, function, loop]), 7, name="program7.ipynb")
    assert r.status == Status.ok, r.status_message
    assert check(r, "chat.loop").passed
