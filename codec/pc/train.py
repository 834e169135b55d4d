"""Learning HCLT parameters: mini-batch EM, then full-batch EM.

The expected counts of every parameter are ``theta * d log p(x) / d theta`` (the circuit
flows), which autograd gives from one upward pass (Peharz et al. 2016; Choi, Vergari &
Van den Broeck 2020). Mini-batch EM moves the parameters a step ``eta`` towards each
batch's EM solution; full-batch EM then accumulates the counts over the whole set.
Counts get a small Laplace pseudo-count so no probability is ever zero.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..imageio import decode_idx
from .model import HCLT, chow_liu_tree, mutual_information

PSEUDOCOUNT = 1e-2


def read_idx_images(path: Path) -> np.ndarray:
    """Images of an idx3 file (optionally .gz) as (N, rows, cols) uint8."""
    return decode_idx(Path(path).read_bytes(), str(path))


def _grad(p: torch.Tensor) -> torch.Tensor:
    assert p.grad is not None, "backward() fills every parameter's gradient"
    return p.grad


def _counts(model: HCLT, x: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    ll = model.log_likelihood(x).sum()
    ll.backward()
    with torch.no_grad():
        counts = [p * _grad(p) for p in (model.prior, model.edges, model.leaves)]
    return float(ll.detach()), counts


def _normalise(counts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [(c + PSEUDOCOUNT) / (c + PSEUDOCOUNT).sum(-1, keepdim=True) for c in counts]


def train_hclt(train: np.ndarray, hidden: int, minibatch_epochs: int = 3, full_epochs: int = 10,
               batch: int = 500, eta: tuple[float, float] = (0.1, 0.01), seed: int = 0,
               valid: np.ndarray | None = None, log: Callable[[str], None] = print,
               init: HCLT | None = None, on_epoch: Callable[[HCLT, dict], None] | None = None
               ) -> tuple[HCLT, dict]:
    """Structure from ``train`` (N x D uint8), then EM. Returns the model and a training log.

    With ``init``, training continues from that model (its structure and parameters)."""
    t0 = time.time()
    x = torch.from_numpy(train.reshape(train.shape[0], -1).astype(np.int64))
    if init is not None:
        model, tree = init, init.tree
    else:
        mi = mutual_information(train.reshape(train.shape[0], -1)[: min(20000, train.shape[0])])
        tree = chow_liu_tree(mi)
        model = HCLT(tree, hidden, seed)
    log(f"Chow-Liu tree over {tree.size} pixels, depth {int(tree.depths().max())}, K={hidden}, "
        f"{model.parameter_count} free parameters ({time.time() - t0:.1f} s)")
    history = []
    g = torch.Generator().manual_seed(seed)
    steps = minibatch_epochs * ((x.shape[0] + batch - 1) // batch)
    step = 0
    for epoch in range(minibatch_epochs):
        perm = torch.randperm(x.shape[0], generator=g)
        total = 0.0
        for i in range(0, x.shape[0], batch):
            ll, counts = _counts(model, x[perm[i:i + batch]])
            total += ll
            lr = eta[0] + (eta[1] - eta[0]) * step / max(1, steps - 1)
            with torch.no_grad():
                for p, new in zip((model.prior, model.edges, model.leaves), _normalise(counts)):
                    p.mul_(1 - lr).add_(lr * new)
            step += 1
        bpd = -total / (x.numel() * np.log(2))
        history.append({"phase": "minibatch", "epoch": epoch, "train_bpd": bpd, "seconds": time.time() - t0})
        log(f"mini-batch EM epoch {epoch}: train {bpd:.4f} bpd ({time.time() - t0:.0f} s)")
    for epoch in range(full_epochs):
        acc: list[torch.Tensor] | None = None
        total = 0.0
        for i in range(0, x.shape[0], batch):
            ll, counts = _counts(model, x[i:i + batch])
            total += ll
            acc = counts if acc is None else [a + c for a, c in zip(acc, counts)]
        assert acc is not None, "the data holds at least one batch"
        with torch.no_grad():
            for p, new in zip((model.prior, model.edges, model.leaves), _normalise(acc)):
                p.copy_(new)
        bpd = -total / (x.numel() * np.log(2))
        row = {"phase": "full", "epoch": epoch, "train_bpd": bpd, "seconds": time.time() - t0}
        if valid is not None:
            row["valid_bpd"] = model.bits_per_dim(torch.from_numpy(valid.reshape(valid.shape[0], -1).astype(np.int64)))
        history.append(row)
        log(f"full-batch EM epoch {epoch}: train {bpd:.4f} bpd"
            + (f", valid {row['valid_bpd']:.4f}" if "valid_bpd" in row else "") + f" ({time.time() - t0:.0f} s)")
        if on_epoch is not None:
            on_epoch(model, {"history": history, "seconds": time.time() - t0})
    return model, {"history": history, "seconds": time.time() - t0}


def save_checkpoint(model: HCLT, path: Path, info: dict) -> None:
    """Float32 parameters and the tree, for :mod:`codec.pc.weights` to export."""
    import json

    from safetensors.torch import save_file

    tensors = {"prior": model.prior.detach().contiguous(), "edges": model.edges.detach().contiguous(),
               "leaves": model.leaves.detach().contiguous(), "parent": torch.from_numpy(model.tree.parent.copy())}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"info": json.dumps(info)})


def load_checkpoint(path: Path) -> tuple[HCLT, dict]:
    """A model saved by :func:`save_checkpoint` (float32, for training) and its training log."""
    import json

    from safetensors.torch import load_file

    from .model import Tree

    t = load_file(str(path))
    parent = t["parent"].numpy().astype(np.int64)
    model = HCLT(Tree(parent, int(np.nonzero(parent < 0)[0][0])), int(t["prior"].shape[0]))
    with torch.no_grad():
        for name in ("prior", "edges", "leaves"):
            getattr(model, name).copy_(t[name])
    info_path = Path(path).with_suffix(".json")
    return model, (json.loads(info_path.read_text()) if info_path.exists() else {})


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Train an HCLT on an idx image set (MNIST layout).",
                                 epilog="example: python -m codec.pc.train ../shared/data/mnist "
                                        "--hidden 16 --out runs/pc/mnist.safetensors")
    ap.add_argument("data", type=Path, help="folder with train-images-idx3-ubyte.gz (and t10k-… for a test figure)")
    ap.add_argument("--hidden", type=int, default=16, help="hidden states per tree node (K)")
    ap.add_argument("--minibatch-epochs", type=int, default=4)
    ap.add_argument("--full-epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", type=Path, help="continue from this checkpoint (its K and tree)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = read_idx_images(args.data / "train-images-idx3-ubyte.gz")
    init: HCLT | None = None
    before: dict = {}
    if args.resume:
        init, before = load_checkpoint(args.resume)
        args.hidden = init.hidden
    pixels = train.shape[1] * train.shape[2]

    def with_totals(info: dict) -> dict:
        """This run's log joined to the resumed run's, with the set-up."""
        info = dict(info)
        info["history"] = before.get("history", []) + info["history"]
        info["seconds"] = before.get("seconds", 0.0) + info["seconds"]
        info.update({"data": str(args.data.name), "train_images": int(len(train)), "hidden": args.hidden,
                     "parameters": HCLT.count_parameters(pixels, args.hidden), "batch": args.batch,
                     "threads": args.threads,
                     "minibatch_epochs": sum(h["phase"] == "minibatch" for h in info["history"]),
                     "full_epochs": sum(h["phase"] == "full" for h in info["history"])})
        return info

    def checkpoint(m: HCLT, info: dict) -> None:  # after every full-batch epoch: a stop loses little
        info = with_totals(info)
        save_checkpoint(m, args.out, info)
        args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")

    model, info = train_hclt(train.reshape(len(train), -1), args.hidden, args.minibatch_epochs, args.full_epochs,
                             args.batch, log=lambda s: print(s, flush=True), init=init, on_epoch=checkpoint)
    info = with_totals(info)
    test_path = args.data / "t10k-images-idx3-ubyte.gz"
    if test_path.exists():
        test = read_idx_images(test_path)
        info["test_bpd_model"] = model.bits_per_dim(torch.from_numpy(test.reshape(len(test), -1).astype(np.int64)))
        print(f"test {info['test_bpd_model']:.4f} bpd (model likelihood)", flush=True)
    save_checkpoint(model, args.out, info)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
