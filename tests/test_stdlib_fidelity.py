"""Fidelity to Apple's metal_stdlib (issue 11): the runtime declares in namespace metal what
Apple's headers declare - no more (a library's own helper must not collide with ours: MLX's
bf16_math.h bfloat overloads once did), no less (what real code calls is there) - and a
`constant` pointer or reference stays const.

Apple's names: tests/data/metal_stdlib_names.txt. Ours: found by the host compiler
(tests/stdlib_names.py, `python tests/stdlib_names.py` prints both differences).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import stdlib_names as sn
from conftest import mg
from corpus import CORPUS, requires_corpus
from kernel_helpers import run_arrays

CXX = sn.find_cxx()
needs_cxx = pytest.mark.skipif(CXX is None, reason="no host C++ compiler")

# Names we declare that the reference does not list, each with why it stays.
ALLOWED_EXTRAS = {
    # Not confirmed either way: neither the specification's text at hand nor the real code
    # (MLX, ggml) shows them, and a kernel calling them may well compile on a Mac.
    "cbrt": "unconfirmed in Apple's <metal_math>; kept so as not to break a kernel that uses it",
    "fast::cbrt": "as cbrt",
    "precise::cbrt": "as cbrt",
    "logb": "unconfirmed in Apple's <metal_math>; kept so as not to break a kernel that uses it",
    "fast::logb": "as logb",
    "precise::logb": "as logb",
    "is_vector": "unconfirmed in Apple's <metal_type_traits> (documented by its header only)",
    "is_vector_v": "as is_vector",
}
ALLOWED_EXTRA_MACROS = {
    "METAL_INTERNAL": "a function-definition macro of Apple's headers (empty here), as METAL_FUNC",
}

# Apple's names the runtime knowingly lacks.
NOT_IMPLEMENTED = {
    "not": "a C++ alternative token (`not x` is `!x`): no host compiler lets it name a function",
    **{n: "fragment functions only (derivatives, discard): no compute kernel calls them"
       for n in ("dfdx", "dfdy", "fwidth", "discard_fragment")},
    **{n: "texture type not implemented (mg_texture.h has 1d/2d/3d and their arrays)"
       for n in ("texturecube", "texturecube_array", "texture2d_ms", "texture2d_ms_array",
                 "texture_buffer", "depth2d", "depth2d_array", "depthcube", "depthcube_array",
                 "depth2d_ms", "depth2d_ms_array")},
    **{n: "gradient sampling options not implemented (level, bias, min_lod_clamp are)"
       for n in ("gradient2d", "gradient3d", "gradientcube")},
    "os_log": "<metal_logging> (MSL 3.2) not implemented: MLX's logging.h uses it only on Metal 3.2+",
    "execution_simdgroup": "<metal_tensor> (Metal 4 tensors, MLX's *_nax files) not implemented",
    **{n: "<metal_pack> not implemented yet (neither MLX nor ggml calls it)"
       for n in sn.reference().get("<metal_pack>", ())},
}


@pytest.fixture(scope="module")
def ours():
    if CXX is None:
        pytest.skip("no host C++ compiler")
    return sn.ours(CXX)


@needs_cxx
def test_the_runtime_declares_no_name_apple_does_not(ours):
    names, _ = ours
    extra = names - sn.reference_names()
    assert extra == set(ALLOWED_EXTRAS), (
        f"declared in namespace metal but not in Apple's metal_stdlib: {sorted(extra - set(ALLOWED_EXTRAS))}"
        f" (move them to namespace __metalgpu or an mg_ name); allowed but gone: "
        f"{sorted(set(ALLOWED_EXTRAS) - extra)}")


@needs_cxx
def test_the_runtime_defines_no_macro_apple_does_not(ours):
    _, macros = ours
    extra = macros - sn.reference().get("<macros>", set())
    assert extra == set(ALLOWED_EXTRA_MACROS), sorted(extra ^ set(ALLOWED_EXTRA_MACROS))


@needs_cxx
def test_what_is_missing_is_the_documented_list(ours):
    names, macros = ours
    missing = (sn.reference_names() - names) | (sn.reference().get("<macros>", set()) - macros)
    assert missing == set(NOT_IMPLEMENTED), (
        f"missing and not documented: {sorted(missing - set(NOT_IMPLEMENTED))}; "
        f"documented but present: {sorted(set(NOT_IMPLEMENTED) - missing)}")


# What real libraries define in namespace metal themselves (so Apple's header has none of it, and
# ours must not either): MLX's steel/utils/type_traits.h, and bf16_math.h's bfloat overloads.
LIBRARY_OWN = {"is_empty", "is_empty_v", "make_void", "void_t", "is_static", "pointer_element",
               "pointer_element_t"}


@needs_cxx
def test_no_name_a_library_defines_in_namespace_metal(ours):
    names, _ = ours
    assert not names & LIBRARY_OWN


@requires_corpus
def test_every_metal_name_the_libraries_qualify_is_in_the_reference():
    # `metal::x` in MLX's and ggml's kernels: Apple's names (their code compiles on a Mac), bar
    # what they define themselves and MLX's host classes (mlx::core::metal::Device ...).
    own = LIBRARY_OWN | {"thread_scope_system", "Device", "CommandEncoder", "MTLFCList"}
    used = set()
    for path in list(CORPUS.rglob("*.metal")) + list(CORPUS.rglob("*.h")):
        used |= set(re.findall(r"\bmetal::((?:fast::|precise::)?[A-Za-z_]\w*)", path.read_text(errors="replace")))
    assert not used - own - sn.reference_names() - {"fast", "precise"}


@needs_cxx
def test_the_probe_sees_a_name_declared_through_token_pasting(ours):
    # The simd_/quad_ functions are made by macros (mg_simd.h); fast:: by using-declarations.
    names, _ = ours
    assert {"simd_sum", "quad_shuffle_xor", "fast::exp", "precise::normalize"} <= names
    assert "isequal" not in names and "fast::mix" not in names   # OpenCL's, and not Apple's


# ---------------------------------------------------------------- every name, in a kernel
MATH1 = ["acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh", "cospi", "exp", "exp2", "exp10", "fabs", "abs", "floor", "fract", "log", "log2", "log10", "rint", "round", "rsqrt", "sin", "sinh", "sinpi", "sqrt", "tan", "tanh", "tanpi", "trunc"]
MATH2 = ["atan2", "copysign", "divide", "fdim", "fmax", "max", "fmin", "min", "fmod", "nextafter", "pow", "powr"]
MATH3 = ["fma", "fmax3", "max3", "fmedian3", "median3", "fmin3", "min3"]


def _math_calls(ns: str) -> str:
    calls = [f"{ns}{n}(x)" for n in MATH1] + [f"{ns}{n}(x, y)" for n in MATH2]
    calls += [f"{ns}{n}(x, y, z)" for n in MATH3]
    calls += [f"{ns}frexp(x, e)", f"{ns}ldexp(x, 2)", f"{ns}modf(x, ip)", f"{ns}sincos(x, c)",
              f"float({ns}ilogb(x))"]
    return "\n".join(f"  r += {c};" for c in calls)


def _types() -> str:
    ref = sn.reference()["<metal_types>"]
    types = sorted(n for n in ref if re.fullmatch(r"(packed_)?[a-z]+[234](x[234])?", n) or
                   n in ("uchar", "ushort", "uint", "ulong", "half", "bfloat"))
    return " + ".join(f"sizeof({t})" for t in types)


SIMD_OPS = {  # name -> call (x: float, n: int, b: bool)
    **{k: f"{{p}}_{k}(x)" for k in ("sum", "product", "min", "max", "prefix_inclusive_sum",
                                     "prefix_exclusive_sum", "prefix_inclusive_product",
                                     "prefix_exclusive_product", "broadcast_first")},
    **{k: f"float({{p}}_{k}(n))" for k in ("and", "or", "xor")},
    **{k: f"{{p}}_{k}(x, ushort(1))" for k in ("shuffle", "broadcast", "shuffle_up", "shuffle_down",
                                                "shuffle_xor", "shuffle_rotate_up", "shuffle_rotate_down")},
    **{k: f"{{p}}_{k}(x, x, ushort(1))" for k in ("shuffle_and_fill_up", "shuffle_and_fill_down")},
    "ballot": "float({p}_ballot(b).any())", "active_threads_mask": "float({p}_active_threads_mask().all())",
    "all": "float({p}_all(b))", "any": "float({p}_any(b))", "is_first": "float({p}_is_first())",
}

TRAITS = r"""
struct mg_probe_empty {};
enum class mg_probe_e : short { a };
static_assert(integral_constant<int, 3>::value == 3 && bool_constant<true>::value, "");
static_assert(true_type::value && !false_type::value, "");
static_assert(is_same<enable_if<true, int>::type, enable_if_t<true, int>>::value, "");
static_assert(is_same_v<conditional<true, int, float>::type, conditional_t<false, float, int>>, "");
static_assert(is_void<void>::value && is_void_v<const void> && !is_void_v<int>, "");
static_assert(is_integral<int>::value && is_integral_v<uint> && !is_integral_v<float>, "");
static_assert(is_floating_point<half>::value && is_floating_point_v<float>, "");
static_assert(is_array<int[3]>::value && is_array_v<int[]> && !is_array_v<int*>, "");
static_assert(is_pointer<int*>::value && is_pointer_v<int*>, "");
static_assert(is_lvalue_reference<int&>::value && is_lvalue_reference_v<int&> && !is_lvalue_reference_v<int&&>, "");
static_assert(is_rvalue_reference<int&&>::value && is_rvalue_reference_v<int&&>, "");
static_assert(is_enum<mg_probe_e>::value && is_enum_v<mg_probe_e>, "");
static_assert(is_class<mg_probe_empty>::value && is_class_v<mg_probe_empty>, "");
static_assert(is_function<int(float)>::value && is_function_v<void()> && !is_function_v<int>, "");
static_assert(is_reference<int&>::value && is_reference_v<int&&>, "");
static_assert(is_arithmetic<ushort>::value && is_arithmetic_v<float>, "");
static_assert(is_fundamental<void>::value && is_fundamental_v<int> && !is_fundamental_v<mg_probe_empty>, "");
static_assert(is_scalar<int>::value && is_scalar_v<float*>, "");
static_assert(is_const<const int>::value && is_const_v<const int>, "");
static_assert(is_volatile<volatile int>::value && is_volatile_v<volatile int>, "");
static_assert(is_trivially_copyable<float4>::value && is_trivially_copyable_v<int>, "");
static_assert(is_signed<int>::value && is_signed_v<float> && is_unsigned<uint>::value && is_unsigned_v<ushort>, "");
static_assert(is_base_of<mg_probe_empty, mg_probe_empty>::value && is_base_of_v<mg_probe_empty, mg_probe_empty>, "");
static_assert(is_convertible<int, float>::value && is_convertible_v<half, float>, "");
static_assert(is_same_v<remove_cv<const volatile int>::type, remove_cv_t<int>>, "");
static_assert(is_same_v<remove_addrspace<int>::type, remove_addrspace_t<int>>, "");
static_assert(is_same_v<remove_const<const int>::type, remove_const_t<int>>, "");
static_assert(is_same_v<remove_volatile<volatile int>::type, remove_volatile_t<int>>, "");
static_assert(is_same_v<add_cv<int>::type, add_cv_t<int>> && is_same_v<add_cv_t<int>, const volatile int>, "");
static_assert(is_same_v<add_const<int>::type, add_const_t<int>> && is_same_v<add_const_t<int>, const int>, "");
static_assert(is_same_v<add_volatile<int>::type, add_volatile_t<int>> && is_same_v<add_volatile_t<int>, volatile int>, "");
static_assert(is_same_v<remove_reference<int&>::type, remove_reference_t<int&&>>, "");
static_assert(is_same_v<add_lvalue_reference<int>::type, add_lvalue_reference_t<int>> && is_same_v<add_lvalue_reference_t<void>, void>, "");
static_assert(is_same_v<add_rvalue_reference<int>::type, add_rvalue_reference_t<int>> && is_same_v<add_rvalue_reference_t<int>, int&&>, "");
static_assert(is_same_v<remove_pointer<int*>::type, remove_pointer_t<int>>, "");
static_assert(is_same_v<add_pointer<int&>::type, add_pointer_t<int>> && is_same_v<add_pointer_t<int>, int*>, "");
static_assert(is_same_v<make_signed<uint>::type, make_signed_t<uint>> && is_same_v<make_signed_t<uint>, int>, "");
static_assert(is_same_v<make_unsigned<int>::type, make_unsigned_t<int>> && is_same_v<make_unsigned_t<int>, uint>, "");
static_assert(is_same_v<decay<const int&>::type, decay_t<int>>, "");
static_assert(is_same_v<remove_cvref<const int&>::type, remove_cvref_t<int>>, "");
static_assert(is_same_v<underlying_type<mg_probe_e>::type, underlying_type_t<mg_probe_e>> && is_same_v<underlying_type_t<mg_probe_e>, short>, "");
"""

FAMILIES = {
    "<metal_types>": """
kernel void fam_types(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  vec<float, 4> v = float4(o[i]); packed_vec<float, 3> p = packed_float3(v.xyz);
  matrix<float, 2, 2> m = float2x2(1.0f);
  o[i] = float(TYPES) + v.x + p.x + m[0][0] + as_type<float>(as_type<uint>(o[i]));
}""".replace("TYPES", _types()),
    "<metal_common>": """
kernel void fam_common(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float x = o[i];
  o[i] = clamp(x, 0.0f, 1.0f) + mix(x, 1.0f, 0.5f) + saturate(x) + sign(x) + smoothstep(0.0f, 1.0f, x)
       + step(0.5f, x) + fast::clamp(x, 0.0f, 1.0f) + fast::saturate(x) + precise::clamp(x, 0.0f, 1.0f)
       + precise::saturate(x);
}""",
    "<metal_integer>": """
kernel void fam_integer(device int* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  int a = o[i]; uint u = uint(a);
  o[i] = abs(a) + int(absdiff(a, 3)) + addsat(a, 1) + clamp(a, 0, 9) + int(clz(u)) + int(ctz(u))
       + int(extract_bits(u, 1u, 3u)) + hadd(a, 2) + int(insert_bits(u, 1u, 2u, 3u)) + mad24(a, 2, 1)
       + madhi(a, 2, 1) + madsat(a, 2, 1) + max(a, 1) + max3(a, 1, 2) + median3(a, 1, 2) + min(a, 1)
       + min3(a, 1, 2) + mul24(a, 2) + mulhi(a, 2) + int(popcount(u)) + int(reverse_bits(u))
       + rhadd(a, 2) + int(rotate(u, 3u)) + subsat(a, 1);
}""",
    "<metal_relational>": """
kernel void fam_relational(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float x = o[i]; float2 v = float2(x, 1.0f);
  bool b = all(v > 0.0f) || any(v < 0.0f) || isfinite(x) || isinf(x) || isnan(x) || isnormal(x)
        || isordered(x, 1.0f) || isunordered(x, 1.0f) || signbit(x);
  o[i] = select(0.0f, 1.0f, b);
}""",
    "<metal_math>": """
kernel void fam_math(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float x = o[i], y = 0.5f, z = 2.0f, r = 0.0f, ip, c; int e;
CALLS
  o[i] = r + ip + c + float(e);
}""".replace("CALLS", "\n".join(_math_calls(ns) for ns in ("", "fast::", "precise::"))),
    "<metal_geometric>": """
kernel void fam_geometric(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float3 a = float3(o[i], 1.0f, 2.0f), b = float3(0.5f);
  o[i] = cross(a, b).x + distance(a, b) + distance_squared(a, b) + dot(a, b) + faceforward(a, b, a).x
       + length(a) + length_squared(a) + normalize(a).x + reflect(a, b).x + refract(a, b, 0.5f).x
       + fast::distance(a, b) + fast::length(a) + fast::normalize(a).x
       + precise::distance(a, b) + precise::length(a) + precise::normalize(a).x;
}""",
    "<metal_matrix>": """
kernel void fam_matrix(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float3x3 m = float3x3(o[i]);
  o[i] = determinant(m) + transpose(float2x3(1.0f))[0][0];
}""",
    "<metal_simdgroup>": """
kernel void fam_simd(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float x = o[i], r = 0.0f; int n = int(i); bool b = x > 0.0f;
  simd_vote sv = simd_ballot(b); quad_vote qv = quad_ballot(b);
CALLS
  o[i] = r + float(sv.all()) + float(qv.any());
}""".replace("CALLS", "\n".join(f"  r += {c.format(p=p)};" for p in ("simd", "quad")
                                  for c in SIMD_OPS.values())),
    "<metal_quadgroup>": "",   # quad_*: in <metal_simdgroup>'s kernel
    "<metal_simdgroup_matrix>": """
kernel void fam_sgm(device float* o [[buffer(0)]], device half* h [[buffer(1)]],
                    device bfloat* bf [[buffer(2)]]) {
  simdgroup_float8x8 a = make_filled_simdgroup_matrix<float, 8, 8>(1.0f);
  simdgroup_matrix<float, 8, 8> c;
  simdgroup_half8x8 hm; simdgroup_bfloat8x8 bm;
  simdgroup_load(a, o, 8); simdgroup_load(hm, h, 8); simdgroup_load(bm, bf, 8);
  simdgroup_multiply(c, a, a);
  simdgroup_multiply_accumulate(c, a, a, c);
  simdgroup_store(c, o, 8); simdgroup_store(hm, h, 8); simdgroup_store(bm, bf, 8);
}""",
    "<metal_atomic>": """
kernel void fam_atomic(device atomic_int* ai [[buffer(0)]], device atomic_uint* au [[buffer(1)]],
                       device atomic_float* af [[buffer(2)]], device atomic_ulong* al [[buffer(3)]],
                       device atomic_bool* ab [[buffer(4)]], device atomic<int>* at [[buffer(5)]]) {
  const memory_order orders[] = {memory_order_relaxed, memory_order_acquire, memory_order_release,
                                 memory_order_acq_rel, memory_order_seq_cst};
  atomic_store_explicit(ai, 1, memory_order_relaxed);
  int v = atomic_load_explicit(ai, memory_order_relaxed);
  v += atomic_exchange_explicit(at, v, memory_order_relaxed);
  int expected = 0;
  atomic_compare_exchange_weak_explicit(ai, &expected, v, memory_order_relaxed, memory_order_relaxed);
  atomic_fetch_add_explicit(au, 1u, memory_order_relaxed); atomic_fetch_sub_explicit(au, 1u, memory_order_relaxed);
  atomic_fetch_and_explicit(au, 1u, memory_order_relaxed); atomic_fetch_or_explicit(au, 1u, memory_order_relaxed);
  atomic_fetch_xor_explicit(au, 1u, memory_order_relaxed); atomic_fetch_min_explicit(au, 1u, memory_order_relaxed);
  atomic_fetch_max_explicit(au, 1u, memory_order_relaxed);
  atomic_fetch_add_explicit(af, 1.0f, orders[0]);
  atomic_fetch_max_explicit(al, ulong(v), memory_order_relaxed);
  atomic_store_explicit(ab, true, memory_order_relaxed);
  atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope::thread_scope_device);
}""",
    "<metal_compute>": """
kernel void fam_compute(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  threadgroup_barrier(mem_flags::mem_threadgroup);
  simdgroup_barrier(mem_flags::mem_none);
  o[i] += 1.0f;
}""",
    "<metal_uniform>": """
kernel void fam_uniform(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  uniform<float> u = make_uniform(2.0f);
  o[i] *= u;
}""",
    "<metal_array>": """
kernel void fam_array(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  array<float, 2> a = {o[i], 1.0f};
  array_ref<float> r = a;
  o[i] = r[0] + r[1] + float(r.size()) + numeric_limits<float>::epsilon();
}""",
    "<metal_limits>": "",   # numeric_limits: in <metal_array>'s kernel
    "<metal_type_traits>": TRAITS + """
kernel void fam_traits(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = 0.0f; }""",
    "<metal_texture>": """
constant constexpr sampler s(coord::normalized, address::clamp_to_edge, filter::linear);
constant constexpr sampler s2(s_address::repeat, t_address::clamp_to_edge, r_address::repeat,
                              mag_filter::linear, min_filter::nearest, mip_filter::none,
                              compare_func::never, border_color::opaque_black);
kernel void fam_texture(texture1d<float> t1 [[texture(0)]], texture1d_array<float> t1a [[texture(1)]],
                        texture2d<float, access::sample> t2 [[texture(2)]],
                        texture2d_array<float> t2a [[texture(3)]], texture3d<float> t3 [[texture(4)]],
                        sampler ps [[sampler(0)]], device float4* o [[buffer(0)]],
                        uint i [[thread_position_in_grid]]) {
  o[i] = t2.sample(s, float2(0.5f), level(0.0f)) + t2.sample(s2, float2(0.5f), bias(0.0f))
       + t2.sample(ps, float2(0.5f), min_lod_clamp(0.0f)) + t1.read(0u) + t1a.read(0u, 0u)
       + t2a.read(uint2(0), 0u) + t3.read(uint3(0));
}""",
}
FAMILIES["<macros>"] = """
kernel void fam_macros(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  o[i] = EXPR;
}""".replace("EXPR", " + ".join(f"float({m})" for m in sorted(sn.reference()["<macros>"])
                                if m not in NOT_IMPLEMENTED and m != "METAL_FUNC"))


def _identifiers(src: str) -> set[str]:
    """Names, `fast::exp` ones whole and their namespace too."""
    return set(re.findall(r"\b(?:fast::|precise::)?[A-Za-z_]\w*", src)) | set(re.findall(r"\b(\w+)::", src))


def test_every_family_has_a_kernel_naming_each_implemented_name():
    # The kernels below use every implemented reference name: the list and the kernels agree.
    used = set().union(*map(_identifiers, FAMILIES.values())) | {"METAL_FUNC"}
    for header, names in sn.reference().items():
        missing = {n for n in names if n not in NOT_IMPLEMENTED} - used
        assert header in FAMILIES or not missing, f"no kernel for {header}"
        assert not missing, f"{header}: no kernel calls {sorted(missing)}"


def test_every_family_compiles(iface):
    src = "#include <metal_stdlib>\nusing namespace metal;\n" + "\n".join(FAMILIES.values())
    iface.load_shader_from_string(src)  # a name we lack is a CompileError here
    names = re.findall(r"kernel void (\w+)", src)
    assert len(names) >= 10 and set(names) == set(iface.function_names())
    for name in names:
        iface.set_function(name)  # compiles the kernel: a CompileError fails the test


def test_new_functions_compute_what_metal_specifies(iface):
    # ilogb, isordered / isunordered, madsat: added for fidelity; numpy is the oracle.
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void k(device const float* x [[buffer(0)]], device int* lg [[buffer(1)]],
              device int* ord [[buffer(2)]], device const int* a [[buffer(3)]], device int* ms [[buffer(4)]],
              device const ulong* ua [[buffer(5)]], device ulong* ums [[buffer(6)]],
              device const long* la [[buffer(7)]], device long* lms [[buffer(8)]],
              uint i [[thread_position_in_grid]]) {
  lg[i] = ilogb(x[i]);
  ord[i] = int(isordered(x[i], 1.0f)) + 2 * int(isunordered(x[i], x[(i + 1) % 8]))
         + 4 * int(all(isordered(float2(x[i]), float2(1.0f))));
  ms[i] = madsat(a[i], a[(i + 1) % 8], a[(i + 2) % 8]);
  ums[i] = madsat(ua[i], ua[(i + 1) % 8], ua[(i + 2) % 8]);
  lms[i] = madsat(la[i], la[(i + 1) % 8], la[(i + 2) % 8]);
}
""")
    x = np.array([1.0, 0.3, 1e-40, 1e30, 8.0, -3.5, np.nan, 0.75], np.float32)
    a = np.array([1 << 20, 1 << 12, -(1 << 20), 5, -3, 1 << 30, -(1 << 30), 7], np.int32)
    ua = np.array([1 << 40, 1 << 30, 5, 1 << 33, 2, 3, 1 << 63, 9], np.uint64)
    la = np.array([1 << 40, -(1 << 30), 5, 1 << 33, -2, 3, -(1 << 62), 9], np.int64)
    outs = run_arrays(iface, "k", [x, np.zeros(8, np.int32), np.zeros(8, np.int32), a,
                                   np.zeros(8, np.int32), ua, np.zeros(8, np.uint64), la,
                                   np.zeros(8, np.int64)], 8)
    lg, ord_, ms, ums, lms = outs[1], outs[2], outs[4], outs[6], outs[8]
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(lg[finite], np.frexp(x[finite])[1] - 1)
    assert lg[6] == np.iinfo(np.int32).min                   # NaN: FP_ILOGBNAN
    nan = np.isnan(x)
    np.testing.assert_array_equal(ord_, (~nan) + 2 * (nan | np.roll(nan, -1)) + 4 * (~nan))

    def sat(v, lo, hi):
        return max(lo, min(hi, v))
    for i in range(8):
        j, k = (i + 1) % 8, (i + 2) % 8
        assert ms[i] == sat(int(a[i]) * int(a[j]) + int(a[k]), -(1 << 31), (1 << 31) - 1), i
        assert ums[i] == sat(int(ua[i]) * int(ua[j]) + int(ua[k]), 0, (1 << 64) - 1), i
        assert lms[i] == sat(int(la[i]) * int(la[j]) + int(la[k]), -(1 << 63), (1 << 63) - 1), i


# ---------------------------------------------------------------- constant stays const
# (Pointers: tests/test_language_real_code.py. Address-space overloads of a user's functions,
# operators, members and specializations: there and tests/test_language_templates.py.)
@pytest.mark.parametrize("body", [
    "void bad(constant float& r) { r = 1.0f; }",
    "void bad(constant float* p) { *p = 1.0f; }",
    "constant float g = 1.0f;\nvoid bad() { g = 2.0f; }",
    "struct S { float v; };\nvoid bad(constant S& s) { s.v = 1.0f; }",
], ids=["reference", "pointer", "program-scope", "member"])
def test_writing_through_constant_is_a_compile_error(iface, body):
    with pytest.raises(mg.CompileError):
        iface.load_shader_from_string("#include <metal_stdlib>\nusing namespace metal;\n" + body + """
kernel void k(device float* out [[buffer(0)]]) { out[0] = 0; }
""")
        iface.set_function("k")


def test_a_constant_reference_binds_and_reads(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
constant float table[3] = {1.0f, 2.0f, 4.0f};
float at(constant float& r) { return r * 2.0f; }
float first(constant float* p) { return p[0]; }
kernel void k(device float* out [[buffer(0)]], constant float* c [[buffer(1)]],
              uint i [[thread_position_in_grid]]) { out[i] = at(table[i]) + first(c + i); }
""")
    out = run_arrays(iface, "k", [np.zeros(3, np.float32), np.array([10, 20, 30], np.float32)], 3)[0]
    np.testing.assert_array_equal(out, [12, 24, 38])


def test_overloads_on_address_space_with_different_bodies_are_a_compile_error(iface):
    # Address spaces are not part of types on the translating targets: two such overloads would
    # be one function, so where their bodies differ the program is refused, never run wrongly.
    with pytest.raises(mg.CompileError, match=r"'which'.*line 3.*different bodies"):
        iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
float which(device const float* p) { return 1.0f; }
float which(constant float* p) { return 2.0f; }
kernel void k(device float* out [[buffer(0)]], constant float* c [[buffer(1)]],
              uint i [[thread_position_in_grid]]) { out[i] = which(out) * 10.0f + which(c); }
""")
        iface.set_function("k")


def test_overloads_on_address_space_alike_but_for_names_and_spaces_are_one(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
float twice(device const float* p, uint i) { device const float* q = p + i; return 2.0f * q[0]; }
float twice(threadgroup const float* src, uint k) { threadgroup const float* q = src + k; return 2.0f * q[0]; }
kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]],
              uint l [[thread_position_in_threadgroup]]) {
  threadgroup float t[4];
  t[l] = float(l);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[i] = twice(out, i) + twice(t, l);
}
""")
    out = iface.array_to_buffer(np.ones(4, np.float32))
    iface.set_function("k")
    iface.run_function(4, [out], threadgroup=4)
    np.testing.assert_array_equal(out.contents, 2 + 2 * np.arange(4))
