"""Jordan nets trained with teacher forcing vs running free, evaluated running free (exposure bias).

    python benchmarks/jordan_teacher_forcing.py

For the presets ``sine-jordan`` and ``counting`` (cell jordan, softmax fed back), trains the same
model twice with the preset's optimizer and clipping: once feeding back the previous TARGET
(teacher forcing: no BPTT, the steps are independent) and once its own previous output (BPTT
through the outputs, what ``rnnlab train`` does until the trainer passes targets), then prints
the last 20 steps' mean training loss and the held-out loss and accuracy, both of the latter
running free (the model's own outputs fed back). A gap between the teacher-forced training loss
and its free-running held-out loss is exposure bias: the net never saw its own mistakes fed back.
"""

from __future__ import annotations

import numpy as np

from rnnlab.spec import load_preset
from rnnlab.train import Trainer
from rnnlab.train.optim import clip_gradients


def run(preset: str, overrides: dict, teacher_forcing: bool) -> tuple[float, float, float | None]:
    spec = load_preset(preset).with_overrides({"train.eval_every": 0, **overrides})
    trainer = Trainer(spec)
    model, t = trainer.model, spec.train
    losses = []
    for step in range(t.steps):
        batch = trainer.task.batch(t.batch_size, step, spec.seed)
        teacher = (batch.y, batch.mask) if teacher_forcing else None
        outputs, _, trace = model.forward(batch.x, None, teacher=teacher)
        result = trainer.loss_fn(outputs, batch.y, batch.mask)
        params = model.parameters()
        grads = model.backward(trace, result.grad)
        grads = {name: grads[name] for name in params}
        clip_gradients(grads, t.clip_value, t.clip_norm)
        trainer.optimizer.step(params, grads)
        losses.append(result.loss)
    held_out = trainer.evaluate()  # running free
    return float(np.mean(losses[-20:])), held_out.loss, held_out.accuracy


def main() -> None:
    cases = [("sine-jordan", {}), ("counting", {"model.cell": "jordan", "model.feedback": "softmax"})]
    print("| preset | training | train loss (last 20) | held-out loss (free) | held-out accuracy |")
    print("|---|---|---|---|---|")
    for preset, overrides in cases:
        for teacher_forcing in (True, False):
            train, loss, acc = run(preset, overrides, teacher_forcing)
            label = "teacher forcing" if teacher_forcing else "running free (BPTT)"
            print(f"| {preset} | {label} | {train:.4f} | {loss:.4f} | {'-' if acc is None else f'{acc:.3f}'} |")


if __name__ == "__main__":
    main()
