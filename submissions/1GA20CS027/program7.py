"""
Deep Learning Lab (20CSEL76) - Program 7
Chatbot using a bidirectional LSTM
Name: Karthik Hegde    USN: 1GA20CS027
"""
import numpy as np
import keras
from keras import layers

pairs = {
    "hello": "hi there",
    "hi": "hello friend",
    "how are you": "i am fine",
    "what is your name": "i am a chatbot",
    "bye": "goodbye",
}
questions = list(pairs)
answers = [pairs[q] for q in questions]

vec = layers.TextVectorization(output_sequence_length=6)
vec.adapt(questions)
X = vec(np.array(questions)).numpy()
y = np.arange(len(questions))

model = keras.Sequential([
    keras.Input(shape=(6,)),
    layers.Embedding(len(vec.get_vocabulary()), 16),
    layers.Bidirectional(layers.LSTM(16)),
    layers.Dense(len(questions), activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=150, verbose=0)


def reply(text):
    probs = model.predict(vec(np.array([text.lower()])).numpy(), verbose=0)[0]
    return answers[int(np.argmax(probs))]


print("Bot: talk to me (type quit to stop)")
while True:
    msg = input("You: ")
    if msg.strip().lower() in ("quit", "exit"):
        break
    print("Bot:", reply(msg))
