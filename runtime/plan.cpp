#include "runtime/plan.hpp"

#include "kernels/error.hpp"

namespace tori::runtime {

namespace {
constexpr const char* kFfnNames = "ws1d, ws2d, wg_x, wg_xy, wg_xyz";
constexpr const char* kAttnNames = "heads, batch, batch:z, batch:yz, batch:xyz";
}  // namespace

std::string to_string(FfnLayout f) {
  switch (f) {
    case FfnLayout::ws1d: return "ws1d";
    case FfnLayout::ws2d: return "ws2d";
    case FfnLayout::wg_x: return "wg_x";
    case FfnLayout::wg_xy: return "wg_xy";
    case FfnLayout::wg_xyz: return "wg_xyz";
  }
  return "?";
}

std::string to_string(AttnLayout a) { return a == AttnLayout::heads ? "heads" : "batch"; }

std::string PhasePlan::str() const {
  std::string s = to_string(ffn) + "/" + to_string(attn);
  if (attn == AttnLayout::batch && axes_written) s += ":" + batch_axes;
  return s;
}

std::string Plan::str() const { return "prefill=" + prefill.str() + ",decode=" + decode.str(); }

PhasePlan parse_phase_plan(const std::string& text, const std::string& flag) {
  auto slash = text.find('/');
  if (slash == std::string::npos)
    throw InputError(flag + ": '" + text + "' is not FFN/ATTENTION (e.g. ws2d/batch:xyz; FFN: " + kFfnNames +
                     "; attention: " + kAttnNames + ")");
  std::string f = text.substr(0, slash), a = text.substr(slash + 1);
  PhasePlan p;
  bool found = false;
  for (FfnLayout l : {FfnLayout::ws1d, FfnLayout::ws2d, FfnLayout::wg_x, FfnLayout::wg_xy, FfnLayout::wg_xyz})
    if (to_string(l) == f) p.ffn = l, found = true;
  if (!found)
    throw InputError(flag + ": unknown FFN layout '" + f + "' in '" + text + "' (allowed: " + kFfnNames + ")");
  if (a == "heads") {
    p.attn = AttnLayout::heads;
    p.batch_axes.clear();
    p.axes_written = false;
  } else if (a == "batch") {
    p.attn = AttnLayout::batch;
    p.batch_axes = "xyz";
    p.axes_written = false;
  } else if (a == "batch:z" || a == "batch:yz" || a == "batch:xyz") {
    p.attn = AttnLayout::batch;
    p.batch_axes = a.substr(6);
    p.axes_written = true;
  } else {
    throw InputError(flag + ": unknown attention layout '" + a + "' in '" + text + "' (allowed: " + kAttnNames + ")");
  }
  return p;
}

Plan parse_plan(const std::string& text, const std::string& flag) {
  if (text.find('=') == std::string::npos) {
    PhasePlan p = parse_phase_plan(text, flag);
    return {p, p};
  }
  Plan plan;
  bool have_prefill = false, have_decode = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    auto eq = part.find('=');
    std::string phase = eq == std::string::npos ? "" : part.substr(0, eq);
    if (phase == "prefill" && !have_prefill) {
      plan.prefill = parse_phase_plan(part.substr(eq + 1), flag);
      have_prefill = true;
    } else if (phase == "decode" && !have_decode) {
      plan.decode = parse_phase_plan(part.substr(eq + 1), flag);
      have_decode = true;
    } else {
      throw InputError(flag + ": '" + part + "' in '" + text +
                       "' is not prefill=FFN/ATTN or decode=FFN/ATTN (each phase once)");
    }
    start = end + 1;
  }
  if (!have_prefill || !have_decode)
    throw InputError(flag + ": '" + text + "' must give both phases: prefill=FFN/ATTN,decode=FFN/ATTN");
  return plan;
}

}  // namespace tori::runtime
