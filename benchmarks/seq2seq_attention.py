"""The classic seq2seq result (Bahdanau et al. 2015; Luong et al. 2015): a plain encoder-decoder
squeezes the whole source into one context vector and loses accuracy as inputs grow, while with
attention the decoder looks back at every encoder state and keeps its accuracy.

    python benchmarks/seq2seq_attention.py                      # GRU, H = 64, reversal of 3-12 digits, 4000 steps
    python benchmarks/seq2seq_attention.py --steps 3000 --attention additive --train-max 15

Trains a plain GRU seq2seq and the same model with attention (same hidden size, steps, batches
and seed) on digit reversal with training lengths ``--train-min``..``--train-max``, then reports
greedy-decoding sequence accuracy and per-token accuracy (EOS included) on held-out batches by
source length bucket, the last bucket longer than anything seen in training. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numba

from rnnlab.data.seq2seq import ReversalTask
from rnnlab.layers.seq2seq import Seq2Seq
from rnnlab.train.seq2seq import Seq2SeqTrainer


def buckets(train_min: int, train_max: int) -> list[tuple[int, int]]:
    """Three buckets splitting the training range, then one past it."""
    span = train_max - train_min + 1
    cuts = [train_min + round(span * k / 3) for k in range(4)]
    inside = [(cuts[k], cuts[k + 1] - 1) for k in range(3) if cuts[k + 1] - 1 >= cuts[k]]
    return inside + [(train_max + 1, train_max + 3)]


def run(attention: str | None, args) -> dict:
    task = ReversalTask(args.train_min, args.train_max)
    model = Seq2Seq(task.vocab_size, task.vocab_size, args.hidden, cell=args.cell, attention=attention,
                    seed=args.seed)
    trainer = Seq2SeqTrainer(model, task, batch_size=args.batch, learning_rate=args.lr, clip_norm=1.0,
                             seed=args.seed)
    started = time.perf_counter()
    records = trainer.train(args.steps)
    seconds = time.perf_counter() - started
    scores = {}
    for lo, hi in buckets(args.train_min, args.train_max):
        scores[(lo, hi)] = trainer.evaluate(task.eval_batch(args.eval_batch, args.seed, lo, hi))
    return {"attention": attention or "none", "loss": sum(r.loss for r in records[-50:]) / min(50, len(records)),
            "seconds": seconds, "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--attention", default="general", choices=["dot", "general", "additive"])
    parser.add_argument("--train-min", type=int, default=3)
    parser.add_argument("--train-max", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="kernel threads (1 by default: on a shared 2-core machine handing small work to threads costs more than it saves)")
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    print(f"reversal, {args.cell.upper()} H={args.hidden}, train lengths {args.train_min}-{args.train_max}, "
          f"{args.steps} steps x batch {args.batch}, Adam lr {args.lr}, clip 1.0, seed {args.seed}; "
          f"greedy decoding on {args.eval_batch} held-out sequences per bucket")
    results = [run(None, args), run(args.attention, args)]
    cols = list(results[0]["scores"])
    header = " | ".join(f"len {lo}-{hi}" + (" (unseen)" if lo > args.train_max else "") for lo, hi in cols)
    print(f"\n| model | final train loss | {header} | train s |")
    print("| --- | ---: |" + " ---: |" * len(cols) + " ---: |")
    for r in results:
        cells = " | ".join(f"{s.sequence_accuracy:.1%} ({s.token_accuracy:.1%})" for s in r["scores"].values())
        print(f"| {r['attention']} | {r['loss']:.3f} | {cells} | {r['seconds']:.0f} |")
    print("\nsequence accuracy (token accuracy) of greedy decoding")


if __name__ == "__main__":
    main()
