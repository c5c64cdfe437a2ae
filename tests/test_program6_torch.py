"""Program 6 written in PyTorch: IMDB loaded through keras.datasets.imdb (the provider),
padded by the program, an embedding + recurrent network trained by a torch optimizer, and
the test accuracy measured by the harness on the program's own padded test reviews."""

from __future__ import annotations

import pytest

from conftest import check
from grader.models import Status

# The seed's SentimentAnalysisModel (nn.Embedding, nn.LSTM, nn.Linear), given data and trained.
LSTM_PROGRAM = '''
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset
from keras.datasets import imdb
from keras.preprocessing.sequence import pad_sequences

torch.manual_seed(0)
(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
x_train = pad_sequences(x_train, maxlen=MAXLEN)
x_test = pad_sequences(x_test, maxlen=MAXLEN)


class SentimentDataset(Dataset):
    def __init__(self, texts, labels):
        self.texts = torch.tensor(texts, dtype=torch.long)
        self.labels = torch.tensor(labels, dtype=LABELS)

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, idx):
        return {'text': self.texts[idx], 'label': self.labels[idx]}


class SentimentAnalysisModel(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim):
        super(SentimentAnalysisModel, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = RECURRENT
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text):
        embedded = self.embedding(text)
        FORWARD


model = SentimentAnalysisModel(vocab_size=10000, embedding_dim=32, hidden_dim=32, output_dim=OUTPUTS)
optimizer = optim.Adam(model.parameters(), lr=0.005)
criterion = LOSS
dataset = SentimentDataset(x_train, y_train)

for epoch in range(3):
    model.train()
    total_loss = 0
    for batch in DataLoader(dataset, batch_size=32, shuffle=True):
        optimizer.zero_grad()
        loss = criterion(model(batch['text']), batch['label'])
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    print(f'Epoch {epoch+1}, Loss: {total_loss / len(dataset)}')

model.eval()
correct = 0
with torch.no_grad():
    for batch in DataLoader(SentimentDataset(x_test, y_test), batch_size=64):
        correct += (PREDICTED == batch['label']).sum().item()
print(f'Test accuracy: {correct / len(x_test):.4f}')
'''
LSTM = {"MAXLEN": "100", "LABELS": "torch.long", "OUTPUTS": "2", "LOSS": "nn.CrossEntropyLoss()",
        "PREDICTED": "model(batch['text']).argmax(1)", "RECURRENT": "nn.LSTM(embedding_dim, hidden_dim, batch_first=True)",
        "FORWARD": "output, _ = self.rnn(embedded)\n        return self.fc(output[:, -1, :])"}
# one output unit, a logit: BCEWithLogitsLoss, sentiment = logit > 0; padded at the end
GRU = {**LSTM, "LABELS": "torch.float32", "OUTPUTS": "1", "LOSS": "nn.BCEWithLogitsLoss()",
       "PREDICTED": "(model(batch['text']) > 0).float()",
       "MAXLEN": "100, padding='post', truncating='post'",
       "RECURRENT": "nn.GRU(embedding_dim, hidden_dim, batch_first=True)",
       "FORWARD": "_, hidden = self.rnn(embedded)\n        return self.fc(hidden[-1]).squeeze(1)"}
# no recurrent layer: the word vectors averaged (a bag of words)
MEAN = {**LSTM, "RECURRENT": "None", "FORWARD": "return self.fc(embedded.mean(dim=1))"}
LIMITS = {"train": 2000, "test": 1000}


def program(parts: dict[str, str]) -> str:
    src = LSTM_PROGRAM
    for key, value in parts.items():
        src = src.replace(key, value)
    return src


@pytest.mark.slow
@pytest.mark.parametrize("parts, layer, loss", [(LSTM, "LSTM", "CrossEntropyLoss"), (GRU, "GRU", "BCEWithLogitsLoss")],
                         ids=["lstm-2-units", "gru-1-logit"])
def test_pytorch_rnn_scores_full_marks(grade_file, parts, layer, loss):
    r = grade_file(program(parts), 6, **LIMITS)
    assert r.status == Status.ok, r.status_message
    failed = [(c.id, c.message) for c in r.checks if not c.passed and c.weight > 0]
    assert failed == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert "PyTorch" in check(r, "framework.any_of").message
    assert layer in check(r, "model.structure").message
    assert loss in check(r, "model.loss_matches_output").message
    m = r.run.trace["measurements"][-1]
    assert m["dataset"] == "imdb" and m["n"] == 1000 and m["trained"] and "padded test reviews" in m["method"]
    assert r.run.trace["fits"][-1]["epochs_capped_to"] == 1
    # what the program printed is what the harness measured on the same rows
    assert check(r, "accuracy.printed_matches").passed
    # the exported model, re-measured in the clean sandbox, agrees with the process on the same rows
    t = r.run.trusted[0]
    assert t.error is None and t.kind == "torch_pt2" and t.n_served == t.n_unseen == 1000, t
    assert abs(t.accuracy_served - m["accuracy"]) < 1e-6
    assert "clean sandbox" in check(r, "accuracy.threshold").evidence["source"]


@pytest.mark.slow
def test_pytorch_model_without_recurrent_layer_is_named_and_held_below_good(grade_file):
    r = grade_file(program(MEAN), 6, **LIMITS)
    assert r.status == Status.ok, r.status_message
    c = check(r, "model.structure")
    assert not c.passed and "no recurrent layer" in c.message and "Embedding → Linear" in c.message
    assert r.marks["execution"] < 10  # below the Good band


@pytest.mark.slow
def test_loop_over_hand_made_batches_counts_as_trained(grade_file):
    loop = """for batch in DataLoader(dataset, batch_size=32, shuffle=True):
        optimizer.zero_grad()
        loss = criterion(model(batch['text']), batch['label'])"""
    by_hand = """for i in range(0, len(dataset), 32):
        batch = {'text': dataset.texts[i:i + 32], 'label': dataset.labels[i:i + 32]}
        optimizer.zero_grad()
        loss = criterion(model(batch['text']), batch['label'])"""
    src = program(LSTM).replace("range(3)", "range(1)")
    assert loop in src
    r = grade_file(src.replace(loop, by_hand), 6, **LIMITS)
    assert r.status == Status.ok, r.status_message
    c = check(r, "model.trained")
    assert c.passed and "63 optimizer steps" in c.message  # 2000 reviews in batches of 32
    assert check(r, "training.loss_falls").passed


@pytest.mark.slow
def test_shuffled_test_set_is_not_measured_but_flagged(grade_file):
    src = program(LSTM).replace("batch_size=64)", "batch_size=64, shuffle=True)")
    r = grade_file(src, 6, **LIMITS)
    assert r.status == Status.ok, r.status_message
    c = check(r, "accuracy.threshold")
    assert not c.passed and "not the 1000 test reviews in the order load_data returned" in c.message
    assert c.flag and "by hand" in c.flag


def test_padded_rows_are_matched_to_their_reviews_by_position():
    import numpy as np
    import torch

    from grader.probe.torch_hooks import matching_window, review_labels

    reviews = np.empty(3, dtype=object)
    reviews[:] = [[1, 5, 6, 7], [1, 8], [1, 9, 9, 4, 3]]
    pre = [torch.tensor(r) for r in ([1, 5, 6, 7], [0, 0, 1, 8], [9, 9, 4, 3])]  # maxlen 4, 'pre'
    post = [torch.tensor(r) for r in ([1, 5, 6], [1, 8, 0], [1, 9, 9])]  # maxlen 3, 'post'
    assert matching_window([torch.tensor([7, 7])] + pre, reviews) is not None  # the last run of 3
    assert matching_window(post + [torch.tensor([7, 7])], reviews) is not None  # else the first
    assert matching_window([pre[1], pre[0], pre[2]], reviews) is None  # shuffled: labels unknown
    logits = np.array([[-0.2], [0.3]])
    assert review_labels(logits, "BinaryCrossEntropyWithLogitsBackward0").tolist() == [0, 1]
    assert review_labels(np.array([0.4, 0.6]), "BinaryCrossEntropyBackward0").tolist() == [0, 1]
    assert review_labels(np.array([[0.9, 0.1], [0.2, 0.7]]), "NllLossBackward0").tolist() == [0, 1]


def test_rows_are_matched_to_the_load_data_call_they_came_from():
    """A program that called load_data twice: its evaluation rows are the first call's reviews,
    so that call's arguments and labels describe them, not the last call's."""
    import numpy as np
    import torch

    from grader.probe.torch_hooks import fed_call

    first, second = np.empty(2, dtype=object), np.empty(2, dtype=object)
    first[:] = [[1, 5, 6], [1, 2, 9]]
    second[:] = [[1, 5, 6, 8], [1, 7, 9]]
    calls = [({"num_words": 7}, (first, np.array([1, 0]))), ({}, (second, np.array([0, 1])))]
    rows = [torch.tensor([0, 1, 5, 6]), torch.tensor([0, 1, 2, 9])]  # the first call's, padded 'pre'
    load_args, x_test, y_test, window = fed_call(rows, calls)
    assert load_args == {"num_words": 7} and x_test is first and y_test.tolist() == [1, 0] and len(window) == 2
    assert fed_call([torch.tensor([0, 1, 5, 7]), rows[1]], calls) is None  # neither call's reviews
