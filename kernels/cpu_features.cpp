#include "kernels/cpu_features.hpp"

namespace tori::kernels {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool cpu_has_avx512_bf16() { return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16"); }
bool cpu_has_avx512_vnni() { return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni"); }
bool cpu_has_amx() {
#if defined(__GNUC__) && __GNUC__ >= 11
  return __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}
#else
bool cpu_has_avx512() { return false; }
bool cpu_has_avx512_bf16() { return false; }
bool cpu_has_avx512_vnni() { return false; }
bool cpu_has_amx() { return false; }
#endif

std::string cpu_features_str() {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(cpu_has_avx512(), "avx512");
  add(cpu_has_avx512_bf16(), "avx512_bf16");
  add(cpu_has_avx512_vnni(), "avx512_vnni");
  add(cpu_has_amx(), "amx");
  return s.empty() ? "baseline" : s;
}

}  // namespace tori::kernels
