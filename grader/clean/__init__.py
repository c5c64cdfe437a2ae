"""Runs in the clean sandbox: no student code, no student files, no labels. It loads a model
the student's program exported (data-only formats, already checked by the host) and writes
its outputs on the inputs the host gives it. The host computes every figure from them."""
