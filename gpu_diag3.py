import os, re, shutil, sys, glob
sys.path.insert(0, "tests")
import numpy as np, metalgpu as mg, corpus, test_corpus_mlx_linalg as L
def variant(name, edit):
    root = f"/tmp/mlx_{name}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(corpus.MLX_ROOT / "mlx" / "backend" / "metal", f"{root}/mlx/backend/metal")
    h = f"{root}/mlx/backend/metal/kernels/gemv.h"
    s = open(h).read(); k = s.index("struct GEMVTKernel")
    open(h, "w").write(s[:k] + edit(s[k:]))
    return root
def run(root, N, K, backend="cuda", dump=False):
    i = mg.Interface(backend=backend)
    i.load_shader(f"{root}/mlx/backend/metal/kernels/gemv.metal", include_dirs=[root])
    r = np.random.default_rng(40)
    vec = r.standard_normal((1, K)).astype(np.float32); mat = r.standard_normal((1, K, N)).astype(np.float32)
    expect = np.einsum("bk,bkn->bn", vec, mat)[0]
    (bm, bn, sm, sn, tm, tn), per_tg = L.gemv_blocks(True, K, N)
    i.set_function(f"gemv_t_float32_bm{bm}_bn{bn}_sm{sm}_sn{sn}_tm{tm}_tn{tn}_nc0_axpby0")
    out = i.create_buffer(N + (-(-N // per_tg)) * 64 * 4 if dump else N, np.float32)
    bufs = [i.array_to_buffer(mat), i.array_to_buffer(vec), i.create_buffer(1, np.float32), out, np.int32(K), np.int32(N), np.int32(N),
            np.float32(1), np.float32(0), np.int32(1), np.array([1], np.int32).tobytes(), L.i64(K), L.i64(K * N), L.i64(0), np.int32(0)]
    corpus.dispatch(i, (-(-N // per_tg), 1, 1), (32, bn, bm), bufs)
    if dump: return out.contents.copy()
    got = out.contents.copy()[:N]; bad = np.nonzero(~np.isclose(got, expect, rtol=1e-4, atol=1e-4))[0]
    print(f"  N={N}: {len(bad)} bad {bad[:6].tolist()} got {got[bad[:3]]} expect {expect[bad[:3]]}", flush=True)
B = "        threadgroup_barrier(mem_flags::mem_none);\n\n        MLX_MTL_PRAGMA_UNROLL"
V = {"orig": lambda s: s,
     "nobarrier": lambda s: s.replace(B, "        MLX_MTL_PRAGMA_UNROLL", 1),
     "simdbarrier": lambda s: s.replace(B, "        simdgroup_barrier(mem_flags::mem_none);\n\n        MLX_MTL_PRAGMA_UNROLL", 1),
     "all_lanes": lambda s: s.replace("    if (out_col < out_vec_size) {\n      out_col = out_col + TN < out_vec_size ? out_col : out_vec_size - TN;",
                                      "    const bool in_range = out_col < out_vec_size;\n    if (true) {\n      out_col = out_col + TN < out_vec_size ? out_col : out_vec_size - TN;", 1)
                                  .replace("if (cm == 0 && out_col < out_vec_size) {", "if (cm == 0 && in_range) {", 1),
     "barrier_before_shuffle": lambda s: s.replace("    // Simdgroup accumulations", "    threadgroup_barrier(mem_flags::mem_none);\n    // Simdgroup accumulations", 1),
}
DUMP = "    for (int tn = 0; tn < TN; tn++) out_vec[out_vec_size + (tid.x * 64 + simd_gid * 32 + simd_lid) * TN + tn] = static_cast<T>(result[tn]);\n    // Simdgroup accumulations"
root = variant("dump", lambda s: s.replace("    // Simdgroup accumulations", DUMP, 1))
for N, K in [(300, 200), (3, 100)]:
    a, b = run(root, N, K, "cpu", True), run(root, N, K, "cuda", True)
    d = np.nonzero(~np.isclose(a, b, rtol=1e-4, atol=1e-4))[0]
    print(f"dump N={N}: {len(d)} differ; first {d[:8].tolist()}; cpu {a[d[:4]]} cuda {b[d[:4]]}", flush=True)
os.environ["METALGPU_DUMP"] = "/tmp/dump3"; os.makedirs("/tmp/dump3", exist_ok=True)
for name, e in V.items():
    print(name, flush=True)
    for N, K in [(300, 200), (3, 100)]:
        try: run(variant(name, e), N, K)
        except Exception as ex: print("  error", str(ex)[:200], flush=True)
txt = "".join(open(f).read() for f in glob.glob("/tmp/dump3/*.cu"))
print("warp_barrier defs:", re.findall(r"threadgroup_barrier_impl\(\) \{ ([^}]*)\}", txt)[:12])
