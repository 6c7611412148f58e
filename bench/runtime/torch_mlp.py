"""The same benchmark in PyTorch: MLP 784-256-128-10, Adam, batch 128, shuffled, on synthetic
60000 x 784 float32 data with 10 classes, N threads. Prints seconds per epoch and, given
--tensor-seconds, how many times faster the tensor runtime was. Skips (exit 0) with the
reason when torch cannot be imported (Debian: apt-get install python3-torch)."""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--tensor-seconds", type=float)
    a = ap.parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means: no comparison
        print(f"pytorch: skipped: torch is not importable ({type(e).__name__}: {e}); "
              "install python3-torch to compare")
        return 0
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.rows, 784)
    y = (x @ torch.randn(784, 10)).argmax(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()  # softmax + cross-entropy, as the tensor model
    times = []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(a.rows)
        total, correct = 0.0, 0
        for i in range(0, a.rows, a.batch):
            idx = perm[i:i + a.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        times.append(time.perf_counter() - t0)
        print(f"pytorch epoch {epoch + 1}: {times[-1]:.3f} s (loss {total / a.rows:.4f}, "
              f"accuracy {correct / a.rows:.4f})")
    s, mean = min(times), sum(times) / len(times)  # the least disturbed epoch, as bench_mlp
    print(f"pytorch {torch.__version__}: {s:.3f} s/epoch (best; mean {mean:.3f}), "
          f"{a.threads} threads")
    if a.tensor_seconds:
        print(f"tensor vs pytorch: {s / a.tensor_seconds:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
