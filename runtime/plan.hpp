#pragma once
// Plan: which layout each phase (prefill, decode) uses, in the paper's vocabulary.
//   FFN layouts:       ws1d | ws2d | wg_x | wg_xy | wg_xyz
//   attention layouts: heads | batch[:z|yz|xyz]   (batch-sharded multiquery over those axes)
// Written "prefill=wg_xyz/batch:xyz,decode=ws2d/batch:xyz"; a single "ws2d/heads" means the same
// layout for both phases. Plans print back exactly as they were written in canonical form.
#include <string>

namespace tori::runtime {

enum class FfnLayout { ws1d, ws2d, wg_x, wg_xy, wg_xyz };
enum class AttnLayout { heads, batch };

std::string to_string(FfnLayout f);
std::string to_string(AttnLayout a);

struct PhasePlan {
  FfnLayout ffn = FfnLayout::ws2d;
  AttnLayout attn = AttnLayout::batch;
  std::string batch_axes = "xyz";  // axes the batch is split over for attn = batch: z, yz or xyz
  bool axes_written = true;        // print ":axes" (false when the user wrote plain "batch")
  std::string str() const;         // "ws2d/batch:xyz"
  bool operator==(const PhasePlan&) const = default;
};

struct Plan {
  PhasePlan prefill, decode;
  std::string str() const;  // "prefill=.../...,decode=.../..."
  bool operator==(const Plan&) const = default;
};

// Throws InputError naming `flag` (e.g. "--plan" or "run.yaml: plan") and the allowed values.
PhasePlan parse_phase_plan(const std::string& text, const std::string& flag);
Plan parse_plan(const std::string& text, const std::string& flag);

}  // namespace tori::runtime
