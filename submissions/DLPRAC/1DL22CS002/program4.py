# Activity 4: VGG16, its last block fine-tuned at a small learning rate, on train/ and val/
from tensorflow import keras

gen = keras.preprocessing.image.ImageDataGenerator(rescale=1.0 / 255)
train = gen.flow_from_directory("train", target_size=(32, 32), batch_size=16, class_mode="categorical")
val = gen.flow_from_directory("val", target_size=(32, 32), batch_size=16, class_mode="categorical",
                              shuffle=False)

base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
for layer in base.layers:
    layer.trainable = layer.name.startswith("block5")  # fine-tune the last block only

model = keras.Sequential([
    keras.Input(shape=(32, 32, 3)),
    base,
    keras.layers.Flatten(),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(train.num_classes, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss="categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=10)
print("Validation:", model.evaluate(val))
