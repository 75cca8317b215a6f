#include "bench/model_bench.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bench/csv.hpp"
#include "kernels/error.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/record.hpp"
#include "models/hf_checkpoint.hpp"
#include "planning/spawn.hpp"

#ifndef TORI_BENCH_DIR
#define TORI_BENCH_DIR "bench"
#endif

namespace tori::bench {

namespace {

const std::vector<std::string> kColumns = {
    "model",      "dtype",     "ranks",       "threads",     "torus",    "plan",        "phase",
    "test",       "batch",     "prompt_len",  "context",     "gen_len",  "tokens",      "repeats",
    "warmup",     "median_s",  "min_s",       "max_s",       "tokens_per_s", "peak_dtype", "peak_gflops",
    "mfu",        "read_gbps", "mbu",         "achieved_gflops", "achieved_gbps", "loadavg_1m",
    "limits_loadavg_1m"};

// A value for the shell, in single quotes.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string list(const std::vector<int64_t>& v) {
  std::vector<std::string> s;
  for (int64_t x : v) s.push_back(std::to_string(x));
  return join(s, ',');
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The test's name, as llama-bench names them: pp<P> (prefill of P tokens per sequence) or
// tg<G>@<C> (G generated tokens per sequence after a context of C).
std::string test_name(const nlohmann::json& s) {
  if (s["phase"] == "prefill") return "pp" + std::to_string(s["prompt_len"].get<int64_t>());
  return "tg" + std::to_string(s["gen_len"].get<int64_t>()) + "@" + std::to_string(s["context"].get<int64_t>());
}

std::string config_of(const nlohmann::json& r) {
  return std::to_string(r["ranks"].get<int>()) + "x" + std::to_string(r["threads"].get<int>());
}

// Markdown table from a header and rows.
std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string s = "|";
  for (const auto& h : head) s += " " + h + " |";
  s += "\n|";
  for (size_t i = 0; i < head.size(); ++i) s += "---|";
  s += "\n";
  for (const auto& r : rows) {
    s += "|";
    for (const auto& c : r) s += " " + c + " |";
    s += "\n";
  }
  return s;
}

}  // namespace

RanksThreads parse_ranks_threads(const std::string& text) {
  RanksThreads rt;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &rt.ranks, &x, &rt.threads, &extra) != 3 || x != 'x' || rt.ranks < 1 ||
      rt.threads < 1)
    throw InputError("--ranks-threads: '" + text + "' (allowed: RxT with R ranks >= 1 and T threads per rank >= 1, "
                     "e.g. 1x2,2x1)");
  return rt;
}

std::vector<nlohmann::json> model_records(const nlohmann::json& lim, const std::vector<nlohmann::json>& steps,
                                          const std::string& model) {
  std::vector<nlohmann::json> out;
  for (const auto& s : steps) {
    const std::string dtype = s["dtype"];
    // The arithmetic the format's matmuls run in at prefill sizes (bench/model_bench.hpp).
    const std::string peak_dtype = dtype == "f32" ? "f32" : "bf16";
    const double peak = lim.at("peak_gflops_" + peak_dtype).get<double>(), gbps = lim.at("read_gbps").get<double>();
    const std::vector<double> times = s["times_s"];
    const double t = s["median_s"], flops = s["model_flops"], bytes = s["model_bytes"];
    const int64_t tokens = s["tokens"];
    nlohmann::json r = {{"bench", "model"},
                        {"model", model},
                        {"dtype", dtype},
                        {"ranks", s["ranks"]},
                        {"threads", s["threads"]},
                        {"torus", s["torus"]},
                        {"plan", s["plan"]},
                        {"phase", s["phase"]},
                        {"test", test_name(s)},
                        {"batch", s["batch"]},
                        {"prompt_len", s["prompt_len"]},
                        {"context", s["context"]},
                        {"gen_len", s["gen_len"]},
                        {"tokens", tokens},
                        {"repeats", s["repeats"]},
                        {"warmup", s["warmup"]},
                        {"times_s", times},
                        {"median_s", t},
                        {"min_s", *std::min_element(times.begin(), times.end())},
                        {"max_s", *std::max_element(times.begin(), times.end())},
                        {"tokens_per_s", double(tokens) / t},
                        {"peak_dtype", peak_dtype},
                        {"peak_gflops", peak},
                        {"mfu", flops * 1e-9 / t / peak},
                        {"read_gbps", gbps},
                        {"mbu", bytes * 1e-9 / t / gbps},
                        {"model_flops", flops},
                        {"model_bytes", bytes},
                        {"sliding_window", s.value("sliding_window", int64_t(0))},
                        {"sink_tokens", s.value("sink_tokens", int64_t(0))},
                        {"attention_kernel", s.value("attention_kernel", std::string("auto"))},
                        {"achieved_gflops", flops * 1e-9 / t},
                        {"achieved_gbps", bytes * 1e-9 / t},
                        {"loadavg_1m", s["loadavg_1m"]},
                        {"limits_loadavg_1m", lim["loadavg_1m"]},
                        {"limits", lim}};
    r["limits"].erase("bench");
    out.push_back(std::move(r));
  }
  return out;
}

std::string model_markdown(const std::vector<nlohmann::json>& recs) {
  if (recs.empty()) return "";
  std::string md;
  // The full table.
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : recs)
    rows.push_back({r["dtype"], config_of(r), r["test"], std::to_string(r["batch"].get<int64_t>()),
                    fmt("%.1f", r["median_s"].get<double>() * 1e3) + " (" + fmt("%.1f", r["min_s"].get<double>() * 1e3) +
                        "–" + fmt("%.1f", r["max_s"].get<double>() * 1e3) + ")",
                    fmt("%.1f", r["tokens_per_s"]), fmt("%.2f", r["mfu"]), fmt("%.2f", r["mbu"]),
                    fmt("%.0f", r["peak_gflops"]) + " " + r["peak_dtype"].get<std::string>() + " / " +
                        fmt("%.1f", r["read_gbps"]),
                    fmt("%.1f", r["loadavg_1m"])});
  md += "### " + recs.front()["model"].get<std::string>() + "\n\n";
  md += table({"dtype", "ranks×threads", "test", "batch", "median ms (min–max)", "tokens/s", "MFU", "MBU",
               "limits: GFLOP/s, GB/s", "load"},
              rows);
  // Ranks vs threads: R ranks x T threads against 1 rank x R·T threads, same dtype and test.
  std::map<std::tuple<std::string, std::string, int64_t, int, int>, const nlohmann::json*> by;
  for (const auto& r : recs)
    by[{r["dtype"].get<std::string>(), r["test"].get<std::string>(), r["batch"].get<int64_t>(), r["ranks"].get<int>(),
        r["threads"].get<int>()}] = &r;
  rows.clear();
  for (const auto& r : recs) {
    const int R = r["ranks"], T = r["threads"];
    if (R < 2) continue;
    const auto it = by.find({r["dtype"].get<std::string>(), r["test"].get<std::string>(), r["batch"].get<int64_t>(), 1, R * T});
    if (it == by.end()) continue;
    const nlohmann::json& one = *it->second;
    rows.push_back({r["dtype"], r["test"], std::to_string(r["batch"].get<int64_t>()),
                    config_of(r) + " vs " + config_of(one),
                    fmt("%.1f", r["tokens_per_s"]) + " vs " + fmt("%.1f", one["tokens_per_s"]),
                    fmt("%.2f", r["tokens_per_s"].get<double>() / one["tokens_per_s"].get<double>()),
                    fmt("%.1f", r["loadavg_1m"]) + ", " + fmt("%.1f", one["loadavg_1m"])});
  }
  if (!rows.empty()) {
    md += "\nRanks vs threads (tokens/s of R ranks × T threads over 1 rank × R·T threads):\n\n";
    md += table({"dtype", "test", "batch", "configurations", "tokens/s", "ratio", "load"}, rows);
  }
  // Summary: tokens/s per (dtype, ranks x threads) and test.
  std::vector<std::string> tests;
  std::vector<std::pair<std::string, std::string>> keys;
  std::map<std::pair<std::pair<std::string, std::string>, std::string>, double> tps;
  for (const auto& r : recs) {
    const std::string test = r["test"].get<std::string>() + " b" + std::to_string(r["batch"].get<int64_t>());
    if (std::find(tests.begin(), tests.end(), test) == tests.end()) tests.push_back(test);
    const std::pair<std::string, std::string> k{r["dtype"], config_of(r)};
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    tps[{k, test}] = r["tokens_per_s"];
  }
  rows.clear();
  for (const auto& k : keys) {
    std::vector<std::string> row = {k.first, k.second};
    for (const auto& t : tests) {
      const auto it = tps.find({k, t});
      row.push_back(it == tps.end() ? "" : fmt("%.1f", it->second));
    }
    rows.push_back(row);
  }
  std::vector<std::string> head = {"dtype", "ranks×threads"};
  for (const auto& t : tests) head.push_back(t);
  md += "\nTokens/s by configuration (ppP: prefill of P tokens per sequence; tgG@C: G generated tokens per "
        "sequence after C; bB: B sequences):\n\n";
  md += table(head, rows);
  return md;
}

namespace {

// The markdown on stdout (unless --json), and with --out <out>.md and <out>.png drawn from `jsonl`.
void write_report(const ModelBenchOptions& o, const std::vector<nlohmann::json>& all, const std::string& jsonl) {
  const std::string md = model_markdown(all);
  if (!o.json) std::printf("%s", md.c_str());
  if (o.out.empty()) return;
  std::ofstream(o.out + ".md") << md;
  if (!o.png) return;
  const std::string cmd = quoted(o.python) + " " + quoted(std::string(TORI_BENCH_DIR) + "/plot-model") + " " +
                          quoted(jsonl) + " --out " + quoted(o.out + ".png") + " && echo plot-ok";
  const std::string text = planning::run_capture(cmd);
  if (text.find("plot-ok") == std::string::npos)
    throw Error("bench model: the PNG was not written (`" + cmd + "`; --no-png skips it): " + text);
}

}  // namespace

std::vector<nlohmann::json> run_model_bench(const ModelBenchOptions& o) {
  if (!o.report.empty()) {
    std::ifstream in(o.report);
    if (!in) throw InputError("--report: cannot read '" + o.report + "'");
    std::vector<nlohmann::json> all;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.value("bench", "") == "model") all.push_back(std::move(j));
    }
    if (all.empty())
      throw InputError("--report: '" + o.report + "' has no bench model records (lines with \"bench\": \"model\")");
    if (o.json)
      for (const auto& r : all) kernels::emit(r);
    write_report(o, all, o.report);
    return all;
  }
  // Every flag first: nothing is launched on a matrix that would fail half-way.
  std::vector<RanksThreads> configs;
  for (const auto& t : o.ranks_threads) configs.push_back(parse_ranks_threads(t));
  if (configs.empty()) throw InputError("--ranks-threads: empty (allowed: RxT,... e.g. 1x2,2x1)");
  if (o.dtypes.empty()) throw InputError(std::string("--dtypes: empty (allowed: ") + kernels::kWeightFormatNames + ")");
  std::vector<std::string> dtypes;  // as Tori names them (f32, not float32): the MFU's peak follows the name
  for (const auto& d : o.dtypes)
    dtypes.emplace_back(kernels::weight_format_name(kernels::parse_weight_format(d, "--dtypes")));
  const auto source = models::open_model(o.model, o.seed);
  const models::ModelConfig cfg = source->config();
  validate_model_run(o.run, cfg.max_seq);

  RecordFiles files(o.out, kColumns);
  std::vector<nlohmann::json> all;
  const double t_start = kernels::now_s();
  const ModelRunOptions& r = o.run;
  for (const RanksThreads& c : configs)
    for (const std::string& dtype : dtypes) {
      std::ostringstream cmd;
      cmd << planning::mpirun_self(o.mpirun, c.ranks) << " --threads " << c.threads << " --json --collectives "
          << o.collectives << " --overlap " << o.overlap << " --matmul " << o.matmul << " --attention-kernel "
          << o.attention_kernel;
      if (o.sliding_window) cmd << " --sliding-window " << *o.sliding_window;
      if (o.sink_tokens) cmd << " --sink-tokens " << *o.sink_tokens;
      cmd << " bench model-run --model "
          << quoted(o.model) << " --seed " << o.seed << " --dtype " << dtype << " --plan " << quoted(o.plan)
          << " --prompt-lens " << list(r.prompt_lens) << " --prefill-batches " << list(r.prefill_batches)
          << " --batches " << list(r.decode_batches) << " --contexts " << list(r.contexts) << " --gen-lens "
          << list(r.gen_lens) << " --repeats " << r.repeats << " --warmup " << r.warmup << " --limits-gemm "
          << r.limit_options.gemm_size << " --limits-stream-mib " << r.limit_options.stream_mib
          << " --limits-repeats " << r.limit_options.repeats;
      std::fprintf(stderr, "[bench model %.0fs] %s, %d rank(s) x %d thread(s), %s: load %.1f ...\n",
                   kernels::now_s() - t_start, cfg.name.c_str(), c.ranks, c.threads, dtype.c_str(),
                   planning::load_average_1m());
      const std::string text = planning::run_capture(cmd.str());
      const auto limits = planning::json_records(text, "model_limits");
      const auto steps = planning::json_records(text, "model_step");
      const std::set<int64_t> pb(r.prefill_batches.begin(), r.prefill_batches.end()),
          db(r.decode_batches.begin(), r.decode_batches.end());
      const size_t want = pb.size() * r.prompt_lens.size() + db.size() * r.contexts.size() * r.gen_lens.size();
      if (limits.size() != 1 || steps.size() != want)
        throw Error("bench model: `" + cmd.str() + "` gave " + std::to_string(steps.size()) + " of " +
                    std::to_string(want) + " step records and " + std::to_string(limits.size()) +
                    " of 1 limits record; its output:\n" + text);
      for (auto& rec : model_records(limits.front(), steps, cfg.name)) {
        std::fprintf(stderr, "[bench model %.0fs]   %s b%lld: %.1f tokens/s (median %.1f ms), MFU %.2f, MBU %.2f\n",
                     kernels::now_s() - t_start, rec["test"].get<std::string>().c_str(),
                     (long long)rec["batch"].get<int64_t>(), rec["tokens_per_s"].get<double>(),
                     rec["median_s"].get<double>() * 1e3, rec["mfu"].get<double>(), rec["mbu"].get<double>());
        if (o.json) kernels::emit(rec);
        files.write(rec);
        all.push_back(std::move(rec));
      }
    }
  files.close();
  write_report(o, all, o.out + ".jsonl");
  if (!o.out.empty()) {
    std::fprintf(stderr, "[bench model %.0fs] wrote %s.jsonl, .csv, .md%s\n", kernels::now_s() - t_start,
                 o.out.c_str(), o.png ? ", .png" : "");
  }
  return all;
}

}  // namespace tori::bench
