"""Program 7 reference solution: a chatbot with a bidirectional LSTM (Keras 3).

The manual's next-word model on its ten lines, written with current Keras APIs:
TextVectorization instead of the removed Tokenizer, the input length given by keras.Input. The
reply continues the user's words for a few words, greedily.
"""

import numpy as np
import keras
from keras import layers

keras.utils.set_random_seed(7)

training_data = [
    "Hello",
    "Hi",
    "How are you?",
    "I'm doing well, thanks!",
    "What's your name?",
    "I'm a chatbot.",
    "Tell me a joke",
    "Why don't scientists trust atoms?",
    "Because they make up everything!",
    "exit",
]
END_WORDS = {"exit", "quit", "bye"}
MAX_REPLY_WORDS = 3

# Words to ids: 0 is padding, 1 is an unknown word.
vectorizer = layers.TextVectorization(output_mode="int")
vectorizer.adapt(training_data)
vocabulary = vectorizer.get_vocabulary()
vocab_size = len(vocabulary)


def encode(text):
    return [int(i) for i in vectorizer([text])[0].numpy() if i != 0]


# Every prefix of every line predicts its next word.
prefixes, next_words = [], []
for line in training_data:
    ids = encode(line)
    for i in range(1, len(ids)):
        prefixes.append(ids[:i])
        next_words.append(ids[i])
context_length = max(len(p) for p in prefixes)
X = keras.utils.pad_sequences(prefixes, maxlen=context_length, padding="pre")
y = np.array(next_words)

model = keras.Sequential([
    keras.Input(shape=(context_length,)),
    layers.Embedding(vocab_size, 64),
    layers.Bidirectional(layers.LSTM(32)),
    layers.Dense(vocab_size, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary()
history = model.fit(X, y, epochs=100, verbose=0)
print(f"loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}, "
      f"accuracy {history.history['accuracy'][-1]:.2f}")


def generate_response(input_text):
    """The words the model predicts after the user's text, stopping at a repeated word."""
    context = encode(input_text)
    reply = []
    for _ in range(MAX_REPLY_WORDS):
        x = keras.utils.pad_sequences([context], maxlen=context_length, padding="pre")
        probs = model.predict(x, verbose=0)[0]
        probs[:2] = 0  # never padding or the unknown-word id
        word_id = int(np.argmax(probs))
        if vocabulary[word_id] in reply:
            break
        reply.append(vocabulary[word_id])
        context.append(word_id)
    return " ".join(reply)


print("Chatbot: hello! Type 'exit' to stop.")
while True:
    user_input = input("You: ").strip()
    if user_input.lower() in END_WORDS:
        print("Chatbot: bye!")
        break
    print(f"Chatbot: {generate_response(user_input)}")
