#pragma once
// HardwareProfile: the per-chip figures the cost model turns counts into times with. Profiles are
// YAML files: the built-in ones live in runtime/profiles/*.yaml and are embedded into the binary
// (models/embed_presets.cmake); any other path is read from disk. Every key is required:
//   name                          string
//   peak_tflops_f32|bf16|int8     matmul peak per chip for that weight dtype, 1e12 FLOP/s
//   hbm_gib                       memory per chip, GiB (2^30 bytes)
//   hbm_gbps                      memory bandwidth, 1e9 bytes/s
//   link_gbps_x|y|z               bandwidth one rank sends at along that axis's ring, 1e9 bytes/s
//   link_latency_us               per block transfer (traffic.hpp's "message"), microseconds
// Unknown or missing keys, or non-positive values, are InputErrors naming the file and the key.
#include <array>
#include <string>
#include <vector>

#include "kernels/packed_weight.hpp"

namespace tori::runtime {

struct HardwareProfile {
  std::string name;
  std::array<double, 3> peak_flops{};  // FLOP/s, by kernels::WeightFormat (f32, bf16, int8)
  double hbm_bytes = 0;                // bytes
  double hbm_bandwidth = 0;            // bytes/s
  std::array<double, 3> link_bandwidth{};  // bytes/s, by axis x, y, z
  double link_latency = 0;                 // s per message

  double peak(kernels::WeightFormat f) const { return peak_flops[size_t(f)]; }
};

// `source` names the file in errors.
HardwareProfile parse_hardware_profile(const std::string& yaml_text, const std::string& source);
// A built-in name (hardware_profile_names()) or a path to a YAML file.
HardwareProfile load_hardware_profile(const std::string& name_or_path);
std::vector<std::string> hardware_profile_names();

}  // namespace tori::runtime
