"""int8 candidates for the decoder's products on this CPU: times of y = x @ W^T + b at the decoder's shapes, fp32 against
fbgemm's dynamic int8 linear, torch._int_mm, torchao (if installed) and onnxruntime (if installed).
Usage: python -m pipeline.bench_int8_candidates [THREADS]"""
import sys, time, warnings
import torch
warnings.filterwarnings("ignore")
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
try:
    from torchao.quantization import quantize_, Int8DynamicActivationInt8WeightConfig
except Exception:  # torchao is optional
    quantize_ = None
def bench(f, sec=1.0):
    for _ in range(5): f()
    t = time.perf_counter(); n = 0
    while time.perf_counter() - t < sec: f(); n += 1
    return (time.perf_counter() - t) / n * 1e6
# rows (64 sentences, or 64 x beam 5) x in -> out: a 2x500 LSTM layer's gates, the Multi30k output layer
SHAPES = [(64, 1000, 2000), (320, 1000, 2000), (64, 500, 5484), (320, 500, 5484)]
print("threads", torch.get_num_threads(), "torch", torch.__version__)
for (m, k, n) in SHAPES:
    x = torch.randn(m, k); w = torch.randn(n, k) * 0.05; b = torch.randn(n)
    ref = torch.addmm(b, x, w.t())
    scale = w.abs().amax(1) / 127; wq = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    qw = torch._make_per_channel_quantized_tensor(wq, scale.double(), torch.zeros(n, dtype=torch.long), 0)
    packed = torch.ops.quantized.linear_prepack(qw, b)
    wqt = wq.t().contiguous()
    def intmm():
        xs = x.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127
        return torch._int_mm(torch.round(x / xs).to(torch.int8), wqt).float() * (xs * scale) + b
    cands = {"fp32 addmm": lambda: torch.addmm(b, x, w.t()),
             "fbgemm linear_dynamic": lambda: torch.ops.quantized.linear_dynamic(x, packed, False),
             "torch._int_mm": intmm}
    if quantize_ is not None:
        lin = torch.nn.Linear(k, n); lin.weight.data, lin.bias.data = w.clone(), b.clone()
        quantize_(lin, Int8DynamicActivationInt8WeightConfig())
        with torch.no_grad():
            cands["torchao int8 dyn"] = lambda: lin(x)
    row = []
    for name, f in cands.items():
        with torch.no_grad():
            us = bench(f); err = ((f() - ref).norm() / ref.norm()).item()
        row.append(f"{name} {us:,.0f} us (err {err:.4f})")
    print((m, k, n), "; ".join(row), flush=True)

# onnxruntime: y = x @ W^T + b as a graph with int8 weights and dynamically quantized activations
# (DynamicQuantizeLinear + MatMulInteger + scales), as onnxruntime.quantization.quantize_dynamic would emit it.
try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit(0)
for (m, k, n) in SHAPES:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32); w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    scale = np.abs(w).max(1) / 127; wq = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "wqt", "xz", "wz"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "ws"], ["s"]), helper.make_node("Mul", ["accf", "s"], ["y0"]),
             helper.make_node("Add", ["y0", "b"], ["y"])]
    inits = [numpy_helper.from_array(wq.T.copy(), "wqt"), numpy_helper.from_array(np.zeros(n, np.int8), "wz"),
             numpy_helper.from_array(scale.astype(np.float32), "ws"), numpy_helper.from_array(b, "b")]
    g = helper.make_graph(nodes, "lin", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions(); so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ref = x @ w.T + b
    y = sess.run(None, {"x": x})[0]
    xt = torch.from_numpy(x)
    us = bench(lambda: sess.run(None, {"x": xt.numpy()}))
    print((m, k, n), f"onnxruntime int8 {us:,.0f} us (err {np.linalg.norm(y - ref) / np.linalg.norm(ref):.4f})", flush=True)
