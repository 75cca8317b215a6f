#pragma once
// What this CPU can do, asked at run time (binaries stay portable; see TORI_NATIVE in the top-level
// CMakeLists). Kernels with hand-written AVX-512 paths check these before calling them.
//
// TORI_SIMD_CLONES marks a hot loop function for GCC/Clang `target_clones`: the compiler emits an
// x86-64-v4 (AVX-512) clone and a baseline clone and the loader picks one per CPU, so the same plain
// C++ (with `#pragma omp simd`) runs vectorised wherever AVX-512 exists. Put it on leaf functions
// (no OpenMP regions inside), because outlined OpenMP bodies do not inherit the clone's target.
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TORI_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define TORI_SIMD_CLONES
#endif

namespace tori::kernels {

bool cpu_has_avx512();       // AVX-512 F/BW/VL/DQ (x86-64-v4)
bool cpu_has_avx512_bf16();  // vdpbf16ps / vcvtne2ps2bf16
bool cpu_has_avx512_vnni();  // vpdpbusd (u8 x s8 dot products of 4, the int4 kernel's inner step)
bool cpu_has_amx();          // AMX tiles (bf16/int8); oneDNN uses them when present
// One line for logs and benchmark records, e.g. "avx512 avx512_bf16 avx512_vnni".
std::string cpu_features_str();

}  // namespace tori::kernels
