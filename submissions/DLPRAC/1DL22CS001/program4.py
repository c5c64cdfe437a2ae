# Activity 4: transfer learning with VGG16 on my own pictures (data/<class>/)
from tensorflow import keras

size = (32, 32)
train_ds = keras.utils.image_dataset_from_directory("data", validation_split=0.2, subset="training",
                                                    seed=7, image_size=size, batch_size=16)
val_ds = keras.utils.image_dataset_from_directory("data", validation_split=0.2, subset="validation",
                                                  seed=7, image_size=size, batch_size=16)
classes = train_ds.class_names

base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=size + (3,))
base.trainable = False
inputs = keras.Input(shape=size + (3,))
x = keras.layers.Rescaling(1 / 255)(inputs)
x = base(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.BatchNormalization()(x)
outputs = keras.layers.Dense(len(classes), activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, validation_data=val_ds, epochs=10)
loss, acc = model.evaluate(val_ds)
print(f"Validation accuracy on my images: {acc:.3f}")
