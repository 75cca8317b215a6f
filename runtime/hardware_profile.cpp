#include "runtime/hardware_profile.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "kernels/error.hpp"

namespace tori::runtime {

const std::map<std::string, std::string>& embedded_profiles();  // generated (runtime/profiles/*.yaml)

namespace {
constexpr double kTera = 1e12, kGiga = 1e9, kGiB = 1073741824.0, kMicro = 1e-6;
const std::vector<std::string> kKeys = {"name",          "peak_tflops_f32", "peak_tflops_bf16", "peak_tflops_int8",
                                        "hbm_gib",       "hbm_gbps",        "link_gbps_x",      "link_gbps_y",
                                        "link_gbps_z",   "link_latency_us"};
}  // namespace

HardwareProfile parse_hardware_profile(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(source + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw InputError(source + ": expected a mapping of profile keys");
  std::set<std::string> allowed(kKeys.begin(), kKeys.end());
  std::string list;
  for (const auto& k : kKeys) list += (list.empty() ? "" : ", ") + k;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) throw InputError(source + ": unknown key '" + key + "' (allowed: " + list + ")");
  }
  auto num = [&](const std::string& key) {
    if (!root[key]) throw InputError(source + ": missing key '" + key + "'");
    double v = 0;
    try {
      v = root[key].as<double>();
    } catch (const YAML::Exception&) {
      throw InputError(source + ": key '" + key + "' must be a number, got '" + root[key].as<std::string>() + "'");
    }
    if (!(v > 0)) throw InputError(source + ": key '" + key + "' must be positive, got " + root[key].as<std::string>());
    return v;
  };
  HardwareProfile p;
  if (!root["name"]) throw InputError(source + ": missing key 'name'");
  p.name = root["name"].as<std::string>();
  p.peak_flops = {num("peak_tflops_f32") * kTera, num("peak_tflops_bf16") * kTera, num("peak_tflops_int8") * kTera};
  p.hbm_bytes = num("hbm_gib") * kGiB;
  p.hbm_bandwidth = num("hbm_gbps") * kGiga;
  p.link_bandwidth = {num("link_gbps_x") * kGiga, num("link_gbps_y") * kGiga, num("link_gbps_z") * kGiga};
  p.link_latency = num("link_latency_us") * kMicro;
  return p;
}

std::vector<std::string> hardware_profile_names() {
  std::vector<std::string> out;
  for (const auto& [name, text] : embedded_profiles()) out.push_back(name);
  return out;
}

HardwareProfile load_hardware_profile(const std::string& name_or_path) {
  const auto& builtin = embedded_profiles();
  if (auto it = builtin.find(name_or_path); it != builtin.end())
    return parse_hardware_profile(it->second, "profile " + name_or_path);
  if (!std::filesystem::is_regular_file(name_or_path)) {
    std::string names;
    for (const auto& n : hardware_profile_names()) names += (names.empty() ? "" : ", ") + n;
    throw InputError("--hardware: '" + name_or_path + "' is neither a built-in profile (" + names +
                     ") nor a YAML file");
  }
  std::ifstream f(name_or_path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_hardware_profile(ss.str(), name_or_path);
}

}  // namespace tori::runtime
