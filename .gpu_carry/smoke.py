import json, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, ".")
from app.engine.testing import build_tiny_model
from app.engine.train import run_training
import torch
tmp = Path(tempfile.mkdtemp())
tiny = build_tiny_model(tmp / "tiny")
train = tmp / "train.jsonl"
train.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"add {i} and {i}"},
    {"role": "assistant", "content": json.dumps({"answer": 2 * i})}]}) + "\n" for i in range(24)))
def spec(out, device):
    return {"job_id": "g", "base_model": "tiny", "fine_tuned_model": "ft:tiny::g", "train_file": str(train),
            "validation_file": str(train), "output_dir": str(tmp / out), "data_dir": str(tmp / "data"),
            "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1, "lora_rank": 4},
            "seed": 3, "resume_from": None, "local_models": {"tiny": str(tiny)}, "device": device}
for device in ("cuda", "cpu"):
    lines = []
    t = time.time()
    status = run_training(spec(device, device), lines.append)
    losses = [l["data"]["train_loss"] for l in lines if l["kind"] == "event" and l["type"] == "metrics"]
    errors = [l for l in lines if l["kind"] == "error"]
    print(f"smoke {device}: {status} in {time.time()-t:.1f}s, first/last loss {losses[0]:.3f}/{losses[-1]:.3f}", errors)
print("cuda peak MiB", torch.cuda.max_memory_allocated() / 2**20)
