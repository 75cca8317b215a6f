#include "planning/hardware_profile.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "kernels/error.hpp"

namespace tori::planning {

const std::map<std::string, std::string>& embedded_profiles();  // generated (planning/profiles/*.yaml)

namespace {
constexpr double kTera = 1e12, kGiB = 1073741824.0, kMicro = 1e-6;
const std::vector<std::string> kKeys = {"name",          "peak_tflops_f32", "peak_tflops_bf16", "peak_tflops_int8",
                                        "hbm_gib",       "hbm_gbps",        "link_gbps_x",      "link_gbps_y",
                                        "link_gbps_z",   "link_latency_us", "link_model_wake_us", "cpu", "collective_us", "collective_sync_us",
                                        "collective_step_gbps", "rank_imbalance", "decode_sequence_share",
                                        "matmul_efficiency", "link_efficiency"};
const std::vector<std::string> kCpuKeys = {"threads",          "matmul_gflops_f32", "matmul_gflops_bf16",
                                           "matmul_gflops_int8", "attention_gflops", "read_gbps",
                                           "cache_read_gbps",  "cache_mib",
                                           "layer_overhead_us", "prefill_overhead_us", "row_overhead_ns"};
const char* const kSmallNames[3] = {"matmul_small_gflops_f32", "matmul_small_gflops_bf16", "matmul_small_gflops_int8"};
constexpr double kNano = 1e-9;
// A cpu entry's optional keys beside kCpuKeys and kSmallNames.
const std::vector<std::string> kOptionalCpuKeys = {"decode_row_overhead_ns", "pack_gbps_bf16", "pack_gbps_int8",
                                                   "overheads_bf16", "overheads_int8", "attention_gflops_bf16"};
// The parts of an overheads_bf16|int8 map: key, Overheads field, seconds per unit of the key.
struct OverheadPart {
  const char* key;
  double Overheads::*field;
  double unit;
};
const OverheadPart kOverheadParts[] = {{"layer_us", &Overheads::layer_s, kMicro},
                                       {"prefill_us", &Overheads::prefill_s, kMicro},
                                       {"row_ns", &Overheads::row_s, kNano},
                                       {"decode_row_ns", &Overheads::decode_row_s, kNano}};
// The formats with overheads of their own (f32's are the entry's layer_overhead_us ...).
constexpr kernels::WeightFormat kOwnOverheadFormats[] = {kernels::WeightFormat::bf16, kernels::WeightFormat::int8};
// matmul_efficiency's whole-number keys beside `sustained`.
const std::pair<const char*, int64_t MatmulEfficiency::*> kEfficiencyTiles[] = {
    {"row_multiple", &MatmulEfficiency::row_multiple},
    {"contraction_multiple", &MatmulEfficiency::contraction_multiple},
    {"output_multiple", &MatmulEfficiency::output_multiple},
    {"fill_rows", &MatmulEfficiency::fill_rows}};
std::string overheads_key(kernels::WeightFormat f) { return "overheads_" + std::string(kernels::weight_format_name(f)); }

// A value as a message shows it: the scalar's text, or what it is instead (as<std::string>() of a
// list or mapping throws yaml-cpp's BadConversion, which names neither the file nor the key).
std::string shown(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  return n.IsSequence() ? "a list" : n.IsMap() ? "a mapping" : "nothing";
}

// A mapping's key, which must be a plain string ("[a, b]: 1" is a list as a key).
std::string key_text(const YAML::Node& k, const std::string& where) {
  if (!k.IsScalar())
    throw InputError(where + ": line " + std::to_string(k.Mark().line + 1) + ": a key must be a plain string");
  return k.Scalar();
}

double positive(const YAML::Node& n, const std::string& where) {
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    throw InputError(where + " must be a number, got '" + shown(n) + "'");
  }
  if (!(v >= 0) || !std::isfinite(v)) throw InputError(where + " must be >= 0, got " + shown(n));
  return v;
}

CpuCalibration parse_cpu_entry(const YAML::Node& e, const std::string& where) {
  if (!e.IsMap()) throw InputError(where + ": expected a mapping with keys threads, matmul_gflops_f32, ...");
  std::string list;
  for (const auto& k : kCpuKeys) list += (list.empty() ? "" : ", ") + k;
  for (const auto& kv : e) {
    const std::string key = key_text(kv.first, where);
    if (std::find(kCpuKeys.begin(), kCpuKeys.end(), key) == kCpuKeys.end() &&
        std::find(std::begin(kSmallNames), std::end(kSmallNames), key) == std::end(kSmallNames) &&
        std::find(kOptionalCpuKeys.begin(), kOptionalCpuKeys.end(), key) == kOptionalCpuKeys.end())
        throw InputError(where + ": unknown key '" + key + "' (allowed: " + list +
                         ", optional matmul_small_gflops_f32|bf16|int8, decode_row_overhead_ns, "
                         "pack_gbps_bf16|int8, overheads_bf16|int8, attention_gflops_bf16)");
  }
  for (const auto& k : kCpuKeys)
    if (!e[k]) throw InputError(where + ": missing key '" + k + "'");
  CpuCalibration c;
  c.threads = static_cast<int>(positive(e["threads"], where + ": key 'threads'"));
  if (c.threads < 1) throw InputError(where + ": key 'threads' must be >= 1");
  const char* names[3] = {"matmul_gflops_f32", "matmul_gflops_bf16", "matmul_gflops_int8"};
  auto curve = [&](const char* name, std::vector<std::pair<double, double>>& out) {
    const YAML::Node m = e[name];
    const std::string w = where + ": key '" + name + "'";
    if (!m.IsMap() || m.size() == 0) throw InputError(w + " must map rows M to GFLOP/s, e.g. {1: 10, 512: 100}");
    for (const auto& kv : m) {
      const double M = positive(kv.first, w + " (M)"), g = positive(kv.second, w + " (GFLOP/s)");
      if (M < 1 || g <= 0) throw InputError(w + ": M must be >= 1 and GFLOP/s > 0");
      out.emplace_back(M, g);
    }
    std::sort(out.begin(), out.end());
  };
  for (size_t f = 0; f < 3; ++f) {
    curve(names[f], c.matmul_gflops[f]);
    if (e[kSmallNames[f]]) curve(kSmallNames[f], c.matmul_small_gflops[f]);
  }
  c.attention_gflops = positive(e["attention_gflops"], where + ": key 'attention_gflops'");
  if (e["attention_gflops_bf16"])
    c.attention_bf16_gflops = positive(e["attention_gflops_bf16"], where + ": key 'attention_gflops_bf16'");
  c.read_gbps = positive(e["read_gbps"], where + ": key 'read_gbps'");
  c.cache_read_gbps = positive(e["cache_read_gbps"], where + ": key 'cache_read_gbps'");
  c.cache_bytes = positive(e["cache_mib"], where + ": key 'cache_mib'") * 1048576.0;
  if (c.attention_gflops <= 0 || c.read_gbps <= 0)
    throw InputError(where + ": attention_gflops and read_gbps must be positive");
  c.overhead.layer_s = positive(e["layer_overhead_us"], where + ": key 'layer_overhead_us'") * kMicro;
  c.overhead.prefill_s = positive(e["prefill_overhead_us"], where + ": key 'prefill_overhead_us'") * kMicro;
  c.overhead.row_s = positive(e["row_overhead_ns"], where + ": key 'row_overhead_ns'") * kNano;
  c.overhead.decode_row_s =
      e["decode_row_overhead_ns"]
          ? positive(e["decode_row_overhead_ns"], where + ": key 'decode_row_overhead_ns'") * kNano
          : c.overhead.row_s;
  for (auto [f, key] : {std::pair{kernels::WeightFormat::bf16, "pack_gbps_bf16"},
                        std::pair{kernels::WeightFormat::int8, "pack_gbps_int8"}})
    if (e[key]) c.pack_gbps[size_t(f)] = positive(e[key], where + ": key '" + key + "'");
  for (kernels::WeightFormat f : kOwnOverheadFormats) {
    const std::string key = overheads_key(f);
    const YAML::Node m = e[key];
    if (!m) continue;
    const std::string w = where + ": key '" + key + "'";
    const std::string parts = "layer_us, prefill_us, row_ns, decode_row_ns";
    if (!m.IsMap()) throw InputError(w + " must map " + parts + " to numbers");
    for (const auto& kv : m) {
      const std::string k = key_text(kv.first, w);
      if (std::none_of(std::begin(kOverheadParts), std::end(kOverheadParts), [&](const auto& p) { return k == p.key; }))
        throw InputError(w + ": unknown key '" + k + "' (allowed: " + parts + ")");
    }
    Overheads o;
    for (const OverheadPart& part : kOverheadParts) {
      if (!m[part.key]) throw InputError(w + ": missing key '" + part.key + "'");
      o.*part.field = positive(m[part.key], w + " (" + part.key + ")") * part.unit;
    }
    c.format_overhead[size_t(f)] = o;
  }
  return c;
}
}  // namespace

namespace {
// GFLOP/s at M on a (M, GFLOP/s) curve: log-log interpolation, clamped.
double rate_on(const std::vector<std::pair<double, double>>& pts, double M) {
  if (pts.empty()) return 0;
  if (M <= pts.front().first) return pts.front().second;
  if (M >= pts.back().first) return pts.back().second;
  for (size_t i = 1; i < pts.size(); ++i)
    if (M <= pts[i].first) {
      const auto [m0, g0] = pts[i - 1];
      const auto [m1, g1] = pts[i];
      const double a = std::log(M / m0) / std::log(m1 / m0);
      return std::exp(std::log(g0) + a * (std::log(g1) - std::log(g0)));
    }
  return pts.back().second;
}
}  // namespace

double MatmulEfficiency::of(double M, double K, double N) const {
  auto up = [](double x, int64_t m) { return std::ceil(std::max(1.0, x) / double(m)) * double(m); };
  M = std::max(1.0, M), K = std::max(1.0, K), N = std::max(1.0, N);
  return sustained * M / std::max(up(M, row_multiple), double(fill_rows)) * K / up(K, contraction_multiple) * N /
         up(N, output_multiple);
}

double CpuCalibration::matmul_rate(kernels::WeightFormat f, double M) const { return rate_on(matmul_gflops[size_t(kernels::priced_format(f))], M); }

double CpuCalibration::matmul_rate(kernels::WeightFormat f, double M, double K, double N) const {
  const double big = matmul_rate(f, M);
  const auto& small_pts = matmul_small_gflops[size_t(kernels::priced_format(f))];
  if (small_pts.empty()) return big;
  constexpr double kSmall = 256, kBig = 1024;  // planning/calibration.cpp's two sizes
  const double size = std::sqrt(std::max(1.0, K * N));
  if (size >= kBig) return big;
  const double small = rate_on(small_pts, M);
  if (size <= kSmall) return small;
  const double a = std::log(size / kSmall) / std::log(kBig / kSmall);
  return std::exp(std::log(small) + a * (std::log(big) - std::log(small)));
}

double HardwareProfile::collective_seconds(collectives::Collective kind, double bytes) const {
  const auto& c = collective_time[size_t(kind)];
  if (c.empty()) return -1;
  if (c.size() == 1 || bytes <= c.front().first) return c.front().second;
  size_t i = 1;
  while (i + 1 < c.size() && bytes > c[i].first) ++i;  // segment [i-1, i]; the last one extends
  const auto [b0, t0] = c[i - 1];
  const auto [b1, t1] = c[i];
  // Never below the smallest call's time (its latency), also where a noisy curve dips.
  return std::max(c.front().second, t0 + (bytes - b0) * (t1 - t0) / std::max(1.0, b1 - b0));
}

const CpuCalibration* HardwareProfile::cpu_for(int threads) const {
  if (cpu.empty()) return nullptr;
  const CpuCalibration* best = &cpu.front();
  for (const auto& c : cpu)
    if (c.threads <= threads) best = &c;
  return best;
}

std::string profile_dir() {
  if (const char* d = std::getenv("TORI_PROFILE_DIR"); d && *d) return d;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".cache";
  return (exe.parent_path().parent_path() / ".cache").string();
}

std::string local_profile_path() { return (std::filesystem::path(profile_dir()) / "local.yaml").string(); }

std::string hardware_profile_yaml(const HardwareProfile& p, const std::string& comment) {
  YAML::Emitter y;
  y << YAML::Comment(comment) << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << p.name;
  y << YAML::Key << "peak_tflops_f32" << YAML::Value << p.peak_flops[0] / kTera;
  y << YAML::Key << "peak_tflops_bf16" << YAML::Value << p.peak_flops[1] / kTera;
  y << YAML::Key << "peak_tflops_int8" << YAML::Value << p.peak_flops[2] / kTera;
  y << YAML::Key << "hbm_gib" << YAML::Value << p.hbm_bytes / kGiB;
  y << YAML::Key << "hbm_gbps" << YAML::Value << p.hbm_bandwidth / kGiga;
  y << YAML::Key << "link_gbps_x" << YAML::Value << p.link_bandwidth[0] / kGiga;
  y << YAML::Key << "link_gbps_y" << YAML::Value << p.link_bandwidth[1] / kGiga;
  y << YAML::Key << "link_gbps_z" << YAML::Value << p.link_bandwidth[2] / kGiga;
  y << YAML::Key << "link_latency_us" << YAML::Value << p.link_latency / kMicro;
  if (p.link_model_wake > 0) y << YAML::Key << "link_model_wake_us" << YAML::Value << p.link_model_wake / kMicro;
  if (p.collective_sync > 0) y << YAML::Key << "collective_sync_us" << YAML::Value << p.collective_sync / kMicro;
  if (p.collective_step_bandwidth > 0)
    y << YAML::Key << "collective_step_gbps" << YAML::Value << p.collective_step_bandwidth / kGiga;
  if (p.rank_imbalance > 0) y << YAML::Key << "rank_imbalance" << YAML::Value << p.rank_imbalance;
  y << YAML::Key << "decode_sequence_share" << YAML::Value << p.decode_sequence_share;
  const MatmulEfficiency& me = p.matmul_efficiency;
  if (me.sustained != 1 || me.row_multiple != 1 || me.contraction_multiple != 1 || me.output_multiple != 1 ||
      me.fill_rows != 1) {
    y << YAML::Key << "matmul_efficiency" << YAML::Value << YAML::Flow << YAML::BeginMap;
    y << YAML::Key << "sustained" << YAML::Value << me.sustained;
    for (const auto& [key, field] : kEfficiencyTiles) y << YAML::Key << key << YAML::Value << me.*field;
    y << YAML::EndMap;
  }
  if (p.link_efficiency != 1) y << YAML::Key << "link_efficiency" << YAML::Value << p.link_efficiency;
  if (std::any_of(p.collective_time.begin(), p.collective_time.end(), [](const auto& v) { return !v.empty(); })) {
    y << YAML::Key << "collective_us" << YAML::Value << YAML::BeginMap;
    for (collectives::Collective k : collectives::kCollectives) {
      if (p.collective_time[size_t(k)].empty()) continue;
      y << YAML::Key << std::string(collectives::collective_name(k)) << YAML::Value << YAML::Flow << YAML::BeginMap;
      for (const auto& [b, t] : p.collective_time[size_t(k)]) y << YAML::Key << b << YAML::Value << t / kMicro;
      y << YAML::EndMap;
    }
    y << YAML::EndMap;
  }
  if (!p.cpu.empty()) {
    y << YAML::Key << "cpu" << YAML::Value << YAML::BeginSeq;
    const char* names[3] = {"matmul_gflops_f32", "matmul_gflops_bf16", "matmul_gflops_int8"};
    for (const auto& c : p.cpu) {
      y << YAML::BeginMap << YAML::Key << "threads" << YAML::Value << c.threads;
      for (size_t f = 0; f < 3; ++f) {
        y << YAML::Key << names[f] << YAML::Value << YAML::Flow << YAML::BeginMap;
        for (const auto& [M, g] : c.matmul_gflops[f]) y << YAML::Key << M << YAML::Value << g;
        y << YAML::EndMap;
      }
      for (size_t f = 0; f < 3; ++f) {
        if (c.matmul_small_gflops[f].empty()) continue;
        y << YAML::Key << kSmallNames[f] << YAML::Value << YAML::Flow << YAML::BeginMap;
        for (const auto& [M, g] : c.matmul_small_gflops[f]) y << YAML::Key << M << YAML::Value << g;
        y << YAML::EndMap;
      }
      y << YAML::Key << "attention_gflops" << YAML::Value << c.attention_gflops;
      if (c.attention_bf16_gflops > 0)
        y << YAML::Key << "attention_gflops_bf16" << YAML::Value << c.attention_bf16_gflops;
      y << YAML::Key << "read_gbps" << YAML::Value << c.read_gbps;
      y << YAML::Key << "cache_read_gbps" << YAML::Value << c.cache_read_gbps;
      y << YAML::Key << "cache_mib" << YAML::Value << c.cache_bytes / 1048576.0;
      y << YAML::Key << "layer_overhead_us" << YAML::Value << c.overhead.layer_s / kMicro;
      y << YAML::Key << "prefill_overhead_us" << YAML::Value << c.overhead.prefill_s / kMicro;
      y << YAML::Key << "row_overhead_ns" << YAML::Value << c.overhead.row_s / kNano;
      y << YAML::Key << "decode_row_overhead_ns" << YAML::Value << c.overhead.decode_row_s / kNano;
      if (c.pack_gbps[size_t(kernels::WeightFormat::bf16)] > 0)
        y << YAML::Key << "pack_gbps_bf16" << YAML::Value << c.pack_gbps[size_t(kernels::WeightFormat::bf16)];
      if (c.pack_gbps[size_t(kernels::WeightFormat::int8)] > 0)
        y << YAML::Key << "pack_gbps_int8" << YAML::Value << c.pack_gbps[size_t(kernels::WeightFormat::int8)];
      for (kernels::WeightFormat f : kOwnOverheadFormats) {
        const auto& o = c.format_overhead[size_t(f)];
        if (!o) continue;
        y << YAML::Key << overheads_key(f) << YAML::Value << YAML::Flow << YAML::BeginMap;
        for (const OverheadPart& part : kOverheadParts) y << YAML::Key << part.key << YAML::Value << (*o).*part.field / part.unit;
        y << YAML::EndMap;
      }
      y << YAML::EndMap;
    }
    y << YAML::EndSeq;
  }
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

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
    const std::string key = key_text(kv.first, source);
    if (!allowed.count(key)) throw InputError(source + ": unknown key '" + key + "' (allowed: " + list + ")");
  }
  auto num = [&](const std::string& key) {
    if (!root[key]) throw InputError(source + ": missing key '" + key + "'");
    double v = 0;
    try {
      v = root[key].as<double>();
    } catch (const YAML::Exception&) {
      throw InputError(source + ": key '" + key + "' must be a number, got '" + shown(root[key]) + "'");
    }
    if (!(v > 0)) throw InputError(source + ": key '" + key + "' must be positive, got " + shown(root[key]));
    return v;
  };
  HardwareProfile p;
  if (!root["name"]) throw InputError(source + ": missing key 'name'");
  if (!root["name"].IsScalar()) throw InputError(source + ": key 'name' must be a string, got " + shown(root["name"]));
  p.name = root["name"].Scalar();
  p.peak_flops = {num("peak_tflops_f32") * kTera, num("peak_tflops_bf16") * kTera, num("peak_tflops_int8") * kTera};
  p.hbm_bytes = num("hbm_gib") * kGiB;
  p.hbm_bandwidth = num("hbm_gbps") * kGiga;
  p.link_bandwidth = {num("link_gbps_x") * kGiga, num("link_gbps_y") * kGiga, num("link_gbps_z") * kGiga};
  p.link_latency = num("link_latency_us") * kMicro;
  if (root["link_model_wake_us"])
    p.link_model_wake = positive(root["link_model_wake_us"], source + ": key 'link_model_wake_us'") * kMicro;
  if (root["collective_sync_us"])
    p.collective_sync = positive(root["collective_sync_us"], source + ": key 'collective_sync_us'") * kMicro;
  if (root["collective_step_gbps"])
    p.collective_step_bandwidth = positive(root["collective_step_gbps"], source + ": key 'collective_step_gbps'") * kGiga;
  if (root["rank_imbalance"]) p.rank_imbalance = positive(root["rank_imbalance"], source + ": key 'rank_imbalance'");
  if (root["decode_sequence_share"]) {
    p.decode_sequence_share = positive(root["decode_sequence_share"], source + ": key 'decode_sequence_share'");
    if (p.decode_sequence_share > 1)
      throw InputError(source + ": key 'decode_sequence_share' must be between 0 and 1, got " +
                       shown(root["decode_sequence_share"]));
  }
  // A fraction in (0, 1] (efficiencies).
  auto fraction = [&](const YAML::Node& n, const std::string& where) {
    const double v = positive(n, where);
    if (!(v > 0 && v <= 1)) throw InputError(where + " must be in (0, 1], got " + shown(n));
    return v;
  };
  if (root["link_efficiency"]) p.link_efficiency = fraction(root["link_efficiency"], source + ": key 'link_efficiency'");
  if (const YAML::Node me = root["matmul_efficiency"]) {
    const std::string w = source + ": key 'matmul_efficiency'";
    const std::string keys = "sustained, row_multiple, contraction_multiple, output_multiple, fill_rows";
    if (!me.IsMap()) throw InputError(w + " must map " + keys + " to numbers");
    for (const auto& kv : me) {
      const std::string k = key_text(kv.first, w);
      if (k != "sustained" && std::none_of(std::begin(kEfficiencyTiles), std::end(kEfficiencyTiles),
                                           [&](const auto& t) { return k == t.first; }))
        throw InputError(w + ": unknown key '" + k + "' (allowed: " + keys + ")");
    }
    if (!me["sustained"]) throw InputError(w + ": missing key 'sustained'");
    p.matmul_efficiency.sustained = fraction(me["sustained"], w + " (sustained)");
    for (const auto& [key, field] : kEfficiencyTiles) {
      if (!me[key]) continue;  // default 1: no padding
      const double v = positive(me[key], w + " (" + key + ")");
      if (v < 1 || v != std::floor(v) || v > 1e6)
        throw InputError(w + " (" + key + ") must be a whole number >= 1, got " + shown(me[key]));
      p.matmul_efficiency.*field = int64_t(v);
    }
  }
  if (const YAML::Node cu = root["collective_us"]) {
    const std::string w = source + ": key 'collective_us'";
    if (!cu.IsMap())
      throw InputError(w + " must map collective names to {bytes: microseconds}, e.g. {all_gather: {4096: 3, 1048576: 90}}");
    for (const auto& kv : cu) {
      const std::string name = key_text(kv.first, w);
      const collectives::Collective k = collectives::parse_collective(name, w);
      const std::string wk = w + " (" + name + ")";
      if (!kv.second.IsMap() || kv.second.size() == 0) throw InputError(wk + " must map bytes to microseconds");
      auto& curve = p.collective_time[size_t(k)];
      for (const auto& pt : kv.second) {
        const double b = positive(pt.first, wk + " (bytes)"), t = positive(pt.second, wk + " (microseconds)");
        if (!(t > 0)) throw InputError(wk + ": times must be positive");
        curve.emplace_back(b, t * kMicro);
      }
      std::sort(curve.begin(), curve.end());
    }
  }
  if (const YAML::Node cpu = root["cpu"]) {
    if (!cpu.IsSequence()) throw InputError(source + ": key 'cpu' must be a list (one entry per thread count)");
    for (size_t i = 0; i < cpu.size(); ++i)
      p.cpu.push_back(parse_cpu_entry(cpu[i], source + ": cpu[" + std::to_string(i) + "]"));
    std::sort(p.cpu.begin(), p.cpu.end(), [](const auto& a, const auto& b) { return a.threads < b.threads; });
  }
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
  std::string path = name_or_path;
  const std::string user = (std::filesystem::path(profile_dir()) / (name_or_path + ".yaml")).string();
  if (name_or_path.find('/') == std::string::npos && std::filesystem::is_regular_file(user)) path = user;
  if (!std::filesystem::is_regular_file(path)) {
    std::string names;
    for (const auto& n : hardware_profile_names()) names += (names.empty() ? "" : ", ") + n;
    if (name_or_path == "local")
      throw InputError("--hardware: the 'local' profile (" + user +
                       ") does not exist yet: run `tori calibrate` once to measure this machine (about a minute; "
                       "$TORI_PROFILE_DIR chooses the directory)");
    throw InputError("--hardware: '" + name_or_path + "' is neither a built-in profile (" + names + "), a profile in " +
                     profile_dir() + ", nor a YAML file");
  }
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_hardware_profile(ss.str(), path);
}

}  // namespace tori::planning
