"""Where a decode step's time goes: sentences/s of greedy and beam-5 search at batch 64 over a split, then a
torch.profiler table (self CPU time per op) of the first 320 sentences.

    python -m pipeline.profile_decode CHECKPOINT DATA_DIR
"""
import sys
import time
import torch
from seqkd.checkpoint import load_model
from seqkd.data import load_split
from seqkd.search import translate

ckpt, data = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
model, _, _, _ = load_model(ckpt)
model.eval()
split = load_split(data, "test")
src = [split.src[i] for i in range(len(split))]
for beam in (1, 5):
    translate(model, src[:64], beam=beam, batch_size=64)  # warm-up
    t = time.perf_counter(); translate(model, src, beam=beam, batch_size=64); dt = time.perf_counter() - t
    print(f"beam {beam}: {len(src)/dt:.1f} sent/s")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        translate(model, src[:320], beam=beam, batch_size=64)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
