"""Train a logistic regression with NumPy under kleio, and resume from checkpoints.

    kleio python examples/logistic_regression.py --epochs 20 --lr 0.5

Every epoch logs a statistic: the training loss and accuracy, and the validation loss and
accuracy on held-out data (``val_loss``, ``val_acc``, declared as metrics with ``val_acc`` the
primary one, which ``kleio ls`` shows and ``kleio best`` ranks by). Every
``--checkpoint-every`` epochs the weights are journalled as an artifact. Run the same command
again (or ``kleio run ID``) after an interruption and it continues from its latest checkpoint
instead of starting over. The data is made here, from a fixed seed: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

from kleio.client.logger import kleio_logger


def make_data(
    seed: int, n: int = 2000, n_val: int = 500, dim: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation sets from one model (validation drawn last, so the training
    set is the same whatever ``n_val``)."""
    rng = np.random.default_rng(seed)
    true_w = rng.normal(size=dim)
    x = rng.normal(size=(n, dim))
    y = (x @ true_w + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    x_val = rng.normal(size=(n_val, dim))
    y_val = (x_val @ true_w + 0.5 * rng.normal(size=n_val) > 0).astype(np.float64)
    return x, y, x_val, y_val


def loss_and_grad(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray):
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    eps = 1e-12
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    err = p - y
    return loss, x.T @ err / len(y), float(np.mean(err)), np.mean((p > 0.5) == y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per epoch (demos)")
    args = parser.parse_args()

    x, y, x_val, y_val = make_data(args.seed)
    w, b, start = np.zeros(x.shape[1]), 0.0, 1
    kleio_logger.declare_metrics(val_loss="min", val_acc="max", primary="val_acc")

    found = kleio_logger.load_artifact("ckpt.npz")
    if found is not None:
        fileobj, metadata = found
        state = np.load(fileobj)
        w, b = state["w"], float(state["b"])
        start = int(metadata["epoch"]) + 1
        print(f"resuming from the checkpoint of epoch {metadata['epoch']}")

    for epoch in range(start, args.epochs + 1):
        loss, grad_w, grad_b, acc = loss_and_grad(w, b, x, y)
        val_loss, _, _, val_acc = loss_and_grad(w, b, x_val, y_val)  # the same weights
        w -= args.lr * grad_w
        b -= args.lr * grad_b
        kleio_logger.log_statistic(
            epoch=epoch, loss=loss, acc=acc, val_loss=val_loss, val_acc=val_acc
        )
        print(
            f"epoch {epoch:3d}  loss {loss:.4f}  acc {acc:.3f}  "
            f"val_loss {val_loss:.4f}  val_acc {val_acc:.3f}"
        )
        if epoch % args.checkpoint_every == 0 or epoch == args.epochs:
            buffer = io.BytesIO()
            np.savez(buffer, w=w, b=b)
            buffer.seek(0)
            kleio_logger.log_artifact("ckpt.npz", buffer, epoch=epoch, kind="checkpoint")
        if args.sleep:
            time.sleep(args.sleep)


if __name__ == "__main__":
    main()
