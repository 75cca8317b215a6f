#include "bench/collectives_bench.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>

#include "collectives/collectives.hpp"
#include "collectives/mpi_check.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"

namespace tori::bench {

using collectives::Algorithm;
using collectives::Axes;
using collectives::Collective;
using kernels::DType;
using kernels::Tensor;

namespace {

// Repeats when none are given: enough to reach ~256 MiB moved per measurement, within [5, 50].
constexpr size_t kAutoRepeatBytes = size_t{256} << 20;
constexpr int kMinRepeats = 5, kMaxRepeats = 50;

// One core copying `bytes`: median GB/s of 5 copies (rank 0's figure is broadcast).
double memcpy_gbps(size_t bytes, MPI_Comm world) {
  double gbps = 0;
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(world, &rank));
  if (rank == 0) {
    auto a = std::make_unique<std::byte[]>(bytes), b = std::make_unique<std::byte[]>(bytes);
    std::memset(a.get(), 1, bytes);
    std::memset(b.get(), 2, bytes);
    auto t = kernels::time_repeats([&] { std::memcpy(b.get(), a.get(), bytes); }, 1, 5);
    gbps = static_cast<double>(bytes) / kernels::median(t) / 1e9;
  }
  MPI_CHECK(MPI_Bcast(&gbps, 1, MPI_DOUBLE, 0, world));
  return gbps;
}

// Axis sets to measure: the given ones, or every set with more than one rank, keeping one set per
// distinct group (on 2x1x1, x, xy, xz and xyz are the same two ranks: only x is kept).
std::vector<Axes> pick_axes(const CollectivesBenchOptions& opt, const collectives::TorusShape& shape) {
  std::vector<Axes> out;
  if (!opt.axes.empty()) {
    for (const auto& s : opt.axes) out.push_back(Axes::parse(s, "--axes"));
    return out;
  }
  std::vector<uint8_t> seen;
  for (Axes a : Axes::all) {
    uint8_t live = 0;
    for (collectives::Axis ax : a.list())
      if (shape[ax] > 1) live |= Axes(ax).bits();
    if (live == 0 || std::find(seen.begin(), seen.end(), live) != seen.end()) continue;
    seen.push_back(live);
    out.push_back(a);
  }
  return out;
}

std::vector<size_t> pick_sizes(const CollectivesBenchOptions& opt) {
  std::vector<size_t> out;
  for (const auto& s : opt.sizes) out.push_back(parse_size(s, "--sizes"));
  if (!out.empty()) return out;
  size_t lo = parse_size(opt.min_size, "--min-size"), hi = parse_size(opt.max_size, "--max-size");
  if (opt.factor < 2)
    throw InputError("--factor: " + std::to_string(opt.factor) + " (allowed: 2 or more)");
  for (size_t b = lo; b <= hi; b *= static_cast<size_t>(opt.factor)) out.push_back(b);
  return out;
}

// Ring traffic factor of a collective on G ranks (for bus bandwidth).
double bus_factor(Collective c, int G) {
  double f = static_cast<double>(G - 1) / G;
  switch (c) {
    case Collective::all_reduce: return 2 * f;
    case Collective::ppermute: return 1.0;
    default: return f;
  }
}

struct Case {
  Collective op;
  Axes axes;
  int group;
  size_t bytes;  // measured-by buffer, per rank
  Tensor input;
  Tensor output;  // reused by every repeat: no allocation or page faults in the timed region
};

// Builds the input for `op` so that the measured-by buffer is `bytes` rounded down to what the
// group divides; empty input if too small to run.
Case make_case(Collective op, Axes axes, int G, size_t bytes, DType dt) {
  const int64_t es = static_cast<int64_t>(kernels::dtype_size(dt));
  int64_t elems = static_cast<int64_t>(bytes) / es;
  int64_t per = elems / G;  // per-member part
  Case c{op, axes, G, 0, {}, {}};
  if (per == 0) return c;
  switch (op) {
    case Collective::all_gather:
      c.input = Tensor({per}, dt);
      c.output = Tensor({per * G}, dt);
      break;
    case Collective::reduce_scatter:
      c.input = Tensor({per * G}, dt);
      c.output = Tensor({per}, dt);
      break;
    case Collective::all_to_all:
      c.input = Tensor({per * G}, dt);
      c.output = Tensor({per * G}, dt);
      break;
    case Collective::all_reduce:
    case Collective::ppermute:
      c.input = Tensor({elems}, dt);
      c.output = Tensor({elems}, dt);
      break;
  }
  c.bytes = std::max(c.input.nbytes(), c.output.nbytes());
  c.input.fill(1.0f);
  return c;
}

void run_once(collectives::Collectives& coll, const Case& c) {
  switch (c.op) {
    case Collective::all_gather: coll.all_gather(c.input, 0, c.axes, c.output); break;
    case Collective::reduce_scatter: coll.reduce_scatter(c.input, 0, c.axes, c.output); break;
    case Collective::all_reduce: coll.all_reduce(c.input, c.axes, c.output); break;
    case Collective::all_to_all: coll.all_to_all(c.input, 0, 0, c.axes, c.output); break;
    case Collective::ppermute: coll.ppermute(c.input, c.axes.list().front(), 1, c.output); break;
  }
}

// Times one case under every algorithm, interleaved (repeat i runs each algorithm once in turn)
// so that load from other processes affects the algorithms alike. Returns, per algorithm, the
// median over repeats of the slowest rank's time; each run starts from a barrier.
std::vector<double> time_case(collectives::Collectives& coll, const Case& c,
                              const std::vector<Algorithm>& algos, int warmup, int repeats,
                              MPI_Comm world) {
  for (Algorithm a : algos) {
    coll.set_algorithm(a);
    for (int i = 0; i < warmup; ++i) run_once(coll, c);
  }
  std::vector<std::vector<double>> times(algos.size());
  for (int i = 0; i < repeats; ++i)
    for (size_t k = 0; k < algos.size(); ++k) {
      coll.set_algorithm(algos[k]);
      MPI_CHECK(MPI_Barrier(world));
      double t0 = kernels::now_s();
      run_once(coll, c);
      double t = kernels::now_s() - t0, slowest = 0;
      MPI_CHECK(MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, world));
      times[k].push_back(slowest);
    }
  std::vector<double> out;
  for (auto& t : times) out.push_back(kernels::median(t));
  return out;
}

}  // namespace

size_t parse_size(const std::string& s, const std::string& what) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  std::string unit = s.substr(i);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) { return std::tolower(ch); });
  size_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib" || unit == "kb") mult = size_t{1} << 10;
  else if (unit == "m" || unit == "mib" || unit == "mb") mult = size_t{1} << 20;
  else if (unit == "g" || unit == "gib" || unit == "gb") mult = size_t{1} << 30;
  if (i == 0 || mult == 0)
    throw InputError(what + ": bad size '" + s + "' (allowed: a number with an optional unit B, KiB, MiB, GiB, e.g. 4KiB, 64MiB)");
  return std::stoull(s.substr(0, i)) * mult;
}

int run_collectives_bench(const CollectivesBenchOptions& opt, MPI_Comm world) {
  collectives::Torus torus(world, opt.torus);
  std::vector<Collective> ops;
  for (const auto& s : opt.ops) ops.push_back(collectives::parse_collective(s, "--ops"));
  if (ops.empty()) ops.assign(collectives::kCollectives.begin(), collectives::kCollectives.end());
  std::vector<Algorithm> algos;
  for (const auto& s : opt.algos) algos.push_back(collectives::parse_algorithm(s, "--algos"));
  if (algos.empty()) algos.assign(collectives::kAlgorithms.begin(), collectives::kAlgorithms.end());
  std::vector<Axes> axes = pick_axes(opt, torus.shape());
  std::vector<size_t> sizes = pick_sizes(opt);
  DType dt = kernels::parse_dtype(opt.dtype, "--dtype");
  if (dt == DType::s8) throw InputError("--dtype: int8 cannot be summed (allowed: f32, bf16)");

  collectives::CollectivesOptions copt;
  if (opt.chunk_bytes) copt.chunk_bytes = opt.chunk_bytes;
  if (opt.message_bytes >= 0) copt.message_bytes = static_cast<size_t>(opt.message_bytes);
  copt.link = opt.link;
  collectives::Collectives coll(torus, copt);
  const bool root = torus.rank() == 0;
  const double limit = memcpy_gbps(*std::max_element(sizes.begin(), sizes.end()), world);
  if (root && !opt.json) {
    char link[64] = "off";
    if (opt.link.enabled()) std::snprintf(link, sizeof link, "%g GB/s, %g us", opt.link.gbps, opt.link.latency_us);
    std::printf("torus %s (%d ranks), %s, memcpy %.2f GB/s, link model %s\n%-15s %-6s %-5s %5s %12s %6s %12s %9s %9s\n",
                torus.shape().str().c_str(), torus.ranks(), opt.dtype.c_str(), limit, link, "op", "algo", "axes",
                "group", "bytes", "reps", "median_ms", "GB/s", "bus_GB/s");
  }
  for (size_t bytes : sizes)
    for (Collective op : ops)
      for (Axes a : axes) {
        if (op == Collective::ppermute && a.count() != 1) continue;  // ppermute runs along one axis
        const int G = torus.group_size(a);
        Case c = make_case(op, a, G, bytes, dt);
        if (c.bytes == 0) continue;
        int repeats = opt.repeats > 0 ? opt.repeats
                                      : static_cast<int>(std::clamp<size_t>(kAutoRepeatBytes / c.bytes, kMinRepeats, kMaxRepeats));
        std::vector<double> medians = time_case(coll, c, algos, opt.warmup, repeats, world);
        for (size_t k = 0; k < algos.size() && root; ++k) {
          const Algorithm algo = algos[k];
          const double t = medians[k], gbps = static_cast<double>(c.bytes) / t / 1e9;
          if (opt.json) {
            kernels::emit({{"bench", "collective"}, {"op", collectives::collective_name(op)},
                  {"algo", collectives::algorithm_name(algo)}, {"axes", a.str()}, {"group", G},
                  {"dtype", opt.dtype}, {"bytes", c.bytes}, {"ranks", torus.ranks()},
                  {"torus", torus.shape().str()}, {"repeats", repeats}, {"median_s", t},
                  {"gbps", gbps}, {"bus_gbps", gbps * bus_factor(op, G)}, {"unit", "GB/s"},
                  {"chunk_bytes", coll.options().chunk_bytes},
                  {"message_bytes", coll.options().message_bytes}, {"threads", opt.threads},
                  {"memcpy_gbps", limit}, {"link_gbps", opt.link.gbps},
                  {"link_latency_us", opt.link.latency_us}});
          } else {
            std::printf("%-15s %-6s %-5s %5d %12zu %6d %12.4f %9.3f %9.3f\n",
                        std::string(collectives::collective_name(op)).c_str(),
                        std::string(collectives::algorithm_name(algo)).c_str(), a.str().c_str(), G,
                        c.bytes, repeats, t * 1e3, gbps, gbps * bus_factor(op, G));
            std::fflush(stdout);
          }
        }
      }
  return 0;
}

}  // namespace tori::bench
